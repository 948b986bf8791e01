/// The newcomers held back from the published view (Protocol.md §6.1.8): when they are due.
struct Publication: Sendable, Equatable {
    /// When the first newcomer still held back came (nil: none is held back).
    var firstHeldAt: UInt64?
    /// When the last newcomer came.
    var lastNewcomerAt: UInt64 = 0
    /// Rows in the published view (``Member/isPublished``), kept by ``Membership/store(_:for:)``.
    var publishedRows = 0
    /// When the next slice of a batch goes out (nil: no batch under way).
    var nextSliceAt: UInt64?

    /// When the newcomers held back enter the published view: `settle` after the last one, at
    /// the latest `within` after the first; during a batch, its next slice (nil when none is
    /// held back).
    func due(settle: UInt64, within: UInt64) -> UInt64? {
        guard let first = firstHeldAt else { return nil }
        return nextSliceAt ?? min(lastNewcomerAt.saturatingAdd(settle), first.saturatingAdd(within))
    }
}

/// Membership: the published view (Protocol.md §6.1.8). The view a peer works with takes a
/// newcomer at once (it is probed, gossiped, answers control requests); what the application
/// sees — `joined` events, ``Peer/publishedMembers`` — takes newcomers in batches, once none
/// came for ``PeerConfig/settleInterval``. A cold start then shows a handful of view sizes
/// instead of one per join: at 10,000 started over 10 s the peers' views had gone through 145
/// sizes on the way, 2 since (Rapid's measure; issue 16 asks for fewer than 10). Departures, deaths
/// and every other change of a published member show at once.
extension Membership {
    /// A member just stored for the first time (or live again while never published): published
    /// at once when `publishNow` is true or the settle interval is 0, else held back with the
    /// others until they settle. Its `joined` carries the tags held for it then.
    mutating func newcomer(_ id: NodeID, now: Now, publishNow: Bool = false, out: inout Outbox) {
        guard let member = members[id], !member.isPublished else { return }
        if publishNow || config.settleInterval == 0 {
            publish(id, out: &out)
            return
        }
        publication.lastNewcomerAt = now.nanos
        if publication.firstHeldAt == nil { publication.firstHeldAt = now.nanos }
    }

    /// When the newcomers held back are due (nil: none is).
    var publicationDue: UInt64? { publication.due(settle: config.settleInterval, within: config.publishWithin) }

    /// Publishes the live members held back, if they are due, at most ``publishSlice`` per
    /// call: the rest go 1 µs later, the next tick (a timer left due would spin an agent's
    /// loop; one walk of the view per slice). Under the flood test's forged newcomers a batch
    /// of 10 s held thousands, and their events in one tick left agents at twice their memory.
    mutating func publishIfDue(now: Now, out: inout Outbox) {
        guard let due = publicationDue, now.nanos >= due else { return }
        var batch: [NodeID] = []
        for member in members.values where !member.isPublished && member.isLive { batch.append(member.id) }
        // In id order, not the table's (which follows arrivals): the same batch reads the same.
        batch.sort()
        if batch.count <= Self.publishSlice {
            publication.firstHeldAt = nil
            publication.nextSliceAt = nil
        } else {
            publication.nextSliceAt = now.nanos.saturatingAdd(1_000)
        }
        for id in batch.prefix(Self.publishSlice) { publish(id, out: &out) }
    }

    /// Marks member `id`, in the view and not yet published, as published, the count kept.
    mutating func markPublished(_ id: NodeID) {
        members.modify(id) { $0.isPublished = true }
        publication.publishedRows += 1
    }

    /// Members published per tick at most (§6.1.8).
    static let publishSlice = 256

    /// Member `id` enters the published view: `joined`, with the tags this peer holds of it,
    /// and `suspect` after it when it is suspect by then (a `joined` member is taken as alive).
    private mutating func publish(_ id: NodeID, out: inout Outbox) {
        guard let member = members[id], !member.isPublished else { return }
        markPublished(id)
        out.emit(.joined(name: member.name, id: id, endpoint: member.endpoint, tags: tagRecords[id]?.tags ?? .empty))
        if member.status == .suspect { out.emit(.statusChanged(name: member.name, id: id, from: .alive, to: .suspect)) }
    }
}
