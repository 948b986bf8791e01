/// Copies of a multicast still to send, one every `every` nanoseconds.
struct QuickRepeats: Sendable, Equatable {
    var left: Int
    var every: UInt64
    var next: UInt64

    /// At most this many copies in all, the first included (LEADER's quick repeats stop at 8 too).
    static let maxCopies = 8
    /// How far apart: the measured paths' timeout (§6.4), within these bounds.
    static let spacing: ClosedRange<UInt64> = .millis(1)...(.millis(50))
}

/// A member's tags and the incarnation of the datagram that told them (Protocol.md §3.4.1).
struct TagRecord: Sendable, Equatable {
    var incarnation: UInt32
    var tags: MemberTags
}

/// Membership: the members' tags. A member's tags come from its own datagrams (ANNOUNCE, PING,
/// ACK, CHANGE, MEMBERS), each stamped with its incarnation, and second-hand from the lists of
/// MEMBERS pages, PINGs and ACKs; a change of tags raises the incarnation and is multicast at
/// once, so a datagram told before the change never wins.
extension Membership {
    /// Applies the tags member `id` sent about itself at `incarnation`: kept unless an earlier
    /// record came at a higher incarnation. Second-hand (listed) tags must come at a higher
    /// incarnation than those held: two sets told at one incarnation (a forgery, or a member
    /// stuck at 2³² − 2) would otherwise flip every view back and forth as each spreads.
    /// Members without tags take no room.
    mutating func noteTags(_ tags: MemberTags, of id: NodeID, at incarnation: UInt32, secondHand: Bool = false, out: inout Outbox) {
        guard id != config.id, let member = members[id] else { return }
        let held = tagRecords[id]
        if let held, held.incarnation > incarnation || (secondHand && held.incarnation == incarnation),
           !config.faults.contains(.tagsAnyIncarnation) { return }
        guard held != nil || !tags.isEmpty else { return }
        tagRecords[id] = TagRecord(incarnation: incarnation, tags: tags)
        guard held?.tags != tags else { return }
        // One held back shows its tags with its `joined` (§6.1.8).
        if member.isPublished { out.emit(.tagsChanged(name: member.name, id: id, tags: tags)) }
        // Gossiped second-hand like any change (§6.1.3): the entry rides on this peer's next
        // PINGs and ACKs with the tags listed, so a member that missed every copy of the
        // CHANGE hears them within a few periods, not a round of the probe order.
        disseminate(id, out: &out)
    }

    /// This peer's tags changed: raise its incarnation (so that no earlier datagram of it can
    /// bring the old tags back) and multicast its entry, which carries the new tags. At the
    /// highest incarnation but one, the tags still go out, at the same incarnation.
    mutating func ownTagsChanged(now: Now, out: inout Outbox) {
        if out.incarnation < UInt32.max - 1 { out.incarnation += 1 }
        out.emit(.tagsChanged(name: config.name, id: config.id, tags: out.tags))
        announceOwnEntry(now: now, out: &out)
        // Quick copies, so that at the measured loss a member misses them all with probability
        // at most 10⁻⁵ (gossip repairs the rest within a few periods); the last copy a period
        // later stays.
        // At least 3: a loss estimate from the first few PINGs may well be 0, and a change of
        // tags is rare enough for copies to cost nothing.
        let copies = min(max(pathSummary?.copiesForDelivery ?? 3, 3), QuickRepeats.maxCopies)
        let spacing = min(max(pathSummary?.timeout ?? .millis(10), QuickRepeats.spacing.lowerBound), QuickRepeats.spacing.upperBound)
        ownEntryRepeats = copies > 1 ? QuickRepeats(left: copies - 1, every: spacing, next: now.nanos.saturatingAdd(spacing)) : nil
    }

    /// Sends one quick copy of this peer's own entry (see ``ownTagsChanged(now:out:)``).
    mutating func repeatOwnEntry(now: Now, out: inout Outbox) {
        guard var repeats = ownEntryRepeats else { return }
        sendChange([ownEntry(incarnation: out.incarnation)], out: &out)
        repeats.left -= 1
        repeats.next = now.nanos.saturatingAdd(repeats.every)
        ownEntryRepeats = repeats.left > 0 ? repeats : nil
    }

    /// MEMBERS pages of `entries`, each within one datagram with the tags it lists (§3.4.1).
    func pages(_ entries: [MemberEntry], out: Outbox) -> [[MemberEntry]] {
        paginate(entries, budget: pageBudget(out), maxPerPage: 255, size: pageCost)
    }

    /// How many pages ``pages(_:out:)`` would cut `first` and then `rest` into, none built.
    func pageCount(_ first: MemberEntry, _ rest: some Sequence<MemberEntry>, out: Outbox) -> Int {
        var packer = PagePacker(budget: pageBudget(out), maxPerPage: 255)
        return rest.reduce(packer.opensPage(pageCost(first)) ? 1 : 0) { $0 + (packer.opensPage(pageCost($1)) ? 1 : 0) }
    }

    /// The room for entries on one MEMBERS page: 2 more for the area's ext_len when this peer
    /// has no tags of its own to open it.
    private func pageBudget(_ out: Outbox) -> Int { Limits.maxDatagram - out.membershipOverhead - 4 - 2 }

    /// What an entry takes of a page: itself and the tags listed for it.
    private func pageCost(_ entry: MemberEntry) -> Int {
        entry.encodedSize + (listable(entry).map { ListedTags.pageCost($0.tags) } ?? 0)
    }

    /// The extension entries listing the tags this peer holds for the members of `page`.
    func listedTags(on page: [MemberEntry]) -> [Extension] {
        let records = page.indices.compactMap { index in
            listable(page[index]).map { ListedTags(index: UInt8(truncatingIfNeeded: index), incarnation: $0.incarnation, tags: $0.tags) }
        }
        return records.isEmpty ? [] : ListedTags.extensions(records)
    }

    /// Listed tags for a PING's or ACK's piggyback (§3.4.1), best effort: for its alive entries,
    /// in order, while they fit in the room the entries left (never an entry left out for
    /// tags: verdicts and refutations go first).
    func listedTags(onPiggyback entries: [MemberEntry], overhead: Int) -> [Extension] {
        // 2 for the area's ext_len when this peer has no tags of its own to open it.
        var room = Limits.maxDatagram - overhead - Ping.fixedSize - entries.reduce(0) { $0 + $1.encodedSize } - 2
        var records: [ListedTags] = []
        for (index, entry) in entries.enumerated() where entry.status == .alive {
            guard let record = listable(entry) else { continue }
            let cost = ListedTags.pageCost(record.tags)
            guard cost <= room else { continue }
            room -= cost
            records.append(ListedTags(index: UInt8(truncatingIfNeeded: index), incarnation: record.incarnation, tags: record.tags))
        }
        return records.isEmpty ? [] : ListedTags.extensions(records)
    }

    /// The tags a MEMBERS page or a piggyback lists for `entry`: another member's, when this
    /// peer holds some.
    func listable(_ entry: MemberEntry) -> TagRecord? {
        guard entry.id != config.id, let record = tagRecords[entry.id], !record.tags.isEmpty, record.incarnation <= entry.incarnation else { return nil }
        return record
    }

    /// Applies the tags a MEMBERS page, PING or ACK lists, second-hand: each as the member's own
    /// datagram at a higher incarnation than the one held would be, when it is not above the
    /// incarnation of its entry.
    mutating func noteListedTags(_ records: [ListedTags], on entries: [MemberEntry], out: inout Outbox) {
        for record in records where Int(record.index) < entries.count {
            let entry = entries[Int(record.index)]
            guard record.incarnation <= entry.incarnation else { continue }
            noteTags(record.tags, of: entry.id, at: record.incarnation, secondHand: true, out: &out)
        }
    }

    /// The tags of member `id` as this peer holds them (empty when none or unknown).
    func tags(of id: NodeID) -> MemberTags {
        tagRecords[id]?.tags ?? .empty
    }
}
