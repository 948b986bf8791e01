/// Newcomers the admission rate refused (Protocol.md §6.1.2, §6.6): they wait in a
/// ``WaitingRoom`` and are PINGed when the rate allows; the answer admits them.
extension Membership {
    /// A refused newcomer waits: ready to be asked at once when a member vouched for it or
    /// when this peer is one of its responders (its ANNOUNCE is this peer's to answer).
    mutating func wait(_ id: NodeID, at endpoint: Endpoint, vouched: Bool, now: Now, out: inout Outbox) {
        let ready = vouched || responders(for: id) != nil
        if waiting.add(id, at: endpoint, ready: ready, now: now.nanos, limit: config.admission.waiting) { out.drop("admission_waiting_full") }
    }

    /// How long a newcomer heard only first-hand waits for a member's word before this peer
    /// asks it anyway: 1 to 2 s, fixed per peer by its id, so that the peers that heard one
    /// multicast do not all PING its sender in the same instant (§6.1.2).
    var unvouchedWait: UInt64 { .millis(1_000) + (config.id.high ^ config.id.low) % .millis(1_000) }

    /// PINGs the newcomers that wait (``WaitingRoom``), newest first, as many as the admission
    /// rate has tokens for and at most ``askedPerPeriod`` a period, each paying its token now:
    /// the one that answers is admitted by its answer (any datagram from it), one that does not
    /// (a forged id) costs its token and this PING, never a row of the view.
    mutating func askWaiting(now: Now, digest: SetDigest, out: inout Outbox) {
        nextAskAt = now.nanos.saturatingAdd(config.protocolPeriod)
        if !asked.isEmpty { asked = asked.filter { $0.value.expires > now.nanos } }
        if now.nanos >= unvouchedWait { waiting.promote(arrivedBy: now.nanos - unvouchedWait) }
        guard waiting.readyCount > 0, admissions.hasTokens(now: now.nanos) else { return }
        let budget = Int(clamping: min(admissions.tokens, UInt64(Self.askedPerPeriod)))
        let (members, asked) = (self.members, self.asked)
        // One admitted meanwhile (by gossip) is asked only if this peer owes it a view: its
        // answer proves it alive at that address, and costs no token.
        for candidate in waiting.take(budget, skip: { (members[$0] != nil && $1.owed == nil) || asked[$0] != nil }) {
            let known = members[candidate.id] != nil
            if !known { admissions.take(1, now: now.nanos) }
            self.asked[candidate.id] = Asked(expires: now.nanos.saturatingAdd(config.protocolPeriod), paid: !known, owed: candidate.guest.owed)
            sendPing(probeID: 0, target: candidate.id, to: candidate.guest.endpoint, digest: digest, out: &out)
        }
    }

    /// The first datagram from a newcomer this peer PINGed from the waiting room, once it is
    /// in the view: the ANNOUNCE this peer refused as one of its responders is answered now,
    /// even if the ring has moved on since (§6.1.2), so that the newcomer gets the view it
    /// missed. Its responders by today's ring never heard that ANNOUNCE: in a cold start of
    /// 200 with a cut rate, a newcomer that every responder refused got no answer at all
    /// once the rings had grown, and never heard of the members that started before it.
    /// Returns whether it sent that answer.
    @discardableResult
    mutating func answerAsked(_ id: NodeID, replyTo: Endpoint, now: Now, out: inout Outbox) -> Bool {
        guard let entry = asked[id], members[id] != nil else { return false }
        asked[id] = nil
        guard let owed = entry.owed else { return false }
        answerAnnounce(from: id, owed: owed, replyTo: replyTo, now: now, out: &out)
        return true
    }

    /// A newcomer's ANNOUNCE this peer refused (the admission rate, §6.6): as one of its
    /// responders, this peer owes it the answer once it is admitted.
    mutating func noteRefusedAnnounce(_ id: NodeID) {
        if let owed = owedAnswer(to: id) { waiting.noteOwed(owed, to: id) }
    }

    /// Waiting newcomers PINGed per protocol period at most (about 430 a second at 150 ms,
    /// above the default rate of 256: the rate is what bounds them).
    static let askedPerPeriod = 64

    // MARK: View updates

    /// A newcomer answered by this peer as its responder: what it is owed later.
    struct ViewUpdate: Sendable {
        var newcomer: NodeID
        var endpoint: Endpoint
        /// When the answer went: members admitted since are the update.
        var since: UInt64
        var due: UInt64
        /// Updates still to follow this one while each brings news.
        var repeats = Membership.viewUpdateRepeats
    }

    /// Newcomers with an update pending at most (`view_updates_full`: a newer one gets none).
    static let viewUpdateLimit = 64
    /// How long after its answer a newcomer is sent the members admitted since (§6.1.2).
    static let viewUpdateDelay: UInt64 = .millis(5_000)
    /// Updates after the first, each 5 s after the one before, while each brings news: at
    /// 10,000 started over 10 s a responder's waiting room takes some 35 s to empty.
    static let viewUpdateRepeats = 6

    /// Notes that `newcomer` was just sent this peer's view, to send it what came since later:
    /// in a cold start a responder's view lacks the members it has yet to admit (its waiting
    /// room), and nobody else would tell the newcomer of those that started before it.
    mutating func scheduleViewUpdate(for newcomer: NodeID, at endpoint: Endpoint, now: Now, out: inout Outbox) {
        guard viewUpdates.count < Self.viewUpdateLimit else {
            out.drop("view_updates_full")
            return
        }
        viewUpdates.append(ViewUpdate(newcomer: newcomer, endpoint: endpoint, since: now.nanos, due: now.nanos.saturatingAdd(Self.viewUpdateDelay)))
    }

    /// The updates due by `now`, taken from the table (the peer checks its answer budget).
    mutating func takeDueViewUpdates(now: Now) -> [ViewUpdate] {
        guard let first = viewUpdates.first, first.due <= now.nanos else { return [] }
        let due = viewUpdates.prefix { $0.due <= now.nanos }
        viewUpdates.removeFirst(due.count)
        return Array(due)
    }

    /// Sends `update.newcomer` the live members whose status changed since this peer's answer
    /// or last update (those it admitted since, and any news about the others), in MEMBERS
    /// pages; nothing when there are none, or when the newcomer is no longer live here. Sent
    /// even when the ring has moved on and this peer is no longer one of its responders: the
    /// newcomer holds this peer's answer, which the update completes. One that sent news is
    /// followed by another, while repeats are left.
    mutating func sendViewUpdate(_ update: ViewUpdate, now: Now, out: inout Outbox) {
        guard members[update.newcomer]?.isLive == true else { return }
        let news = members.values.filter { $0.isLive && $0.statusSince >= update.since && $0.id != update.newcomer }
        guard !news.isEmpty else { return }
        sendPages(news.sorted { $0.id < $1.id }.map { $0.entry() }, to: update.endpoint, replyWanted: false, out: &out)
        guard update.repeats > 0 else { return }
        // Taken from the table just before: its place is free, and it is due after all others.
        var next = update
        next.repeats -= 1
        next.since = now.nanos
        next.due = now.nanos.saturatingAdd(Self.viewUpdateDelay)
        viewUpdates.append(next)
    }
}
