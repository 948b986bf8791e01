/// When a peer starts a term on its own (Protocol.md §6.4). Only such starts send a CANDIDACY;
/// a peer that enters a term because it heard of it stays silent, since the candidacy it heard
/// already has a lower stamp than any it could send. A cluster that learns of a leader's death
/// from one multicast CHANGE would otherwise start everywhere at once, so starts after a leader
/// loss (and retries) are staggered along the hash ring: the first `electors` live members
/// clockwise from a key of (topic, term) start at once, the next ones a backoff later, and so on
/// for a few tiers; whoever hears a CANDIDACY or LEADER of the term first is disarmed.
extension Elections {
    /// Tiers of `electors` members each, one backoff apart, before everyone else.
    static let startTiers = 4

    /// Electors per tier (the setting, kept within 1 … 64).
    var electorCount: Int { min(max(1, config.electors), 64) }

    /// The gap between tiers: enough for the previous tier's CANDIDACY to arrive and disarm.
    func startBackoff(_ view: MemberView) -> UInt64 { decisionWindow(view).saturatingMultiplied(by: 4) }

    /// The ring key of a topic's term: FNV-1a of the topic bytes, and the term (the ring
    /// hashes both again).
    static func electorKey(topic: String, term: UInt64) -> NodeID {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in topic.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return NodeID(high: hash, low: term)
    }

    /// This peer's place among the first members clockwise from the term's key (0 ..< tiers ×
    /// electors), or nil when it is further away.
    func startRank(topic: String, term: UInt64, view: MemberView) -> Int? {
        let wanted = electorCount * Self.startTiers
        return view.ringSuccessors(of: Self.electorKey(topic: topic, term: term), count: wanted).firstIndex(of: config.id)
    }

    /// How long after the cause this peer starts `term` on its own: 0 for the electors, a
    /// backoff per tier after them, and for the rest of the cluster a random moment after the
    /// last tier (only if every tier stayed silent: members gone together, or views that differ).
    mutating func startDelay(topic: String, term: UInt64, view: MemberView) -> UInt64 {
        let tiers = UInt64(Self.startTiers)
        if let rank = startRank(topic: topic, term: term, view: view) {
            return startBackoff(view).saturatingMultiplied(by: UInt64(rank / electorCount))
        }
        let last = startBackoff(view).saturatingMultiplied(by: tiers)
        return last.saturatingAdd(rng.next() % max(1, last))
    }

    /// Arms the start of the next term at `base` plus this peer's stagger.
    mutating func armStart(_ key: ByteString, after base: UInt64, view: MemberView) {
        guard let election = table[key], election.term < Limits.maxTerm else { return }
        let delay = startDelay(topic: key.string, term: election.term + 1, view: view)
        table.modify(key) { $0.retryAt = base.saturatingAdd(delay) }
    }
}
