/// What the shell and embedders call besides the inputs, forwarded to the components.
extension Peer {
    public var clock: LamportClock { outbox.clock }
    public var incarnation: UInt32 { outbox.incarnation }
    public var counters: Counters { outbox.counters }
    /// The view this peer works with: every member it knows, newcomers held back included.
    public var members: MemberTable { membership.members }
    /// The view the application sees (Protocol.md §6.1.8): the members it was told joined, in
    /// no particular order. Newcomers enter it in batches once they settle.
    public var publishedMembers: [Member] { membership.members.values.filter(\.isPublished) }
    /// The published view by status, indexed by `MemberStatus.rawValue`, this peer counted
    /// alive: what `stats` and `/metrics` report (§6.1.8), in one scan of the view.
    public var publishedByStatus: [Int] {
        var counts = [Int](repeating: 0, count: MemberStatus.allCases.count)
        counts[Int(MemberStatus.alive.rawValue)] = 1
        for member in membership.members.values where member.isPublished { counts[Int(member.status.rawValue)] += 1 }
        return counts
    }
    /// How many members ``publishedMembers`` holds, kept as a counter (this peer not included).
    public var publishedCount: Int { membership.publication.publishedRows }
    /// Whether newcomers are held back from the published view now (§6.1.8).
    public var holdsNewcomersBack: Bool { membership.publication.firstHeldAt != nil }
    /// Members alive or suspect, this peer included.
    public var liveCount: Int { membership.liveCount }
    /// Keyed by topic bytes (``ByteString``).
    public var elections: [ByteString: ElectionState] { leadership.table }
    public internal(set) var revoked: RevokedSet {
        get { sync.revoked }
        _modify { yield &sync.revoked }
    }
    public var isSynced: Bool { sync.isSynced }

    /// Every revoked entry in id order (for persistence and listings).
    public mutating func revokedEntries() -> [RevokedEntry] { sync.revoked.allEntries() }

    public func leader(of topic: String) -> (name: String?, id: NodeID?, term: UInt64) {
        leadership.leader(of: topic)
    }

    /// Starts an election for `topic` at the next term. Returns the actions; a one-member
    /// cluster decides at once.
    public mutating func elect(_ topic: String, now: Now) -> [Action] {
        answerElectRequests(leadership.elect(topic, context: electionContext(now), out: &outbox))
        publish(since: 0, now: now)
        return outbox.take()
    }

    /// Sends a control request to the group (or by unicast to `to`) and collects the replies as
    /// `.reply` events, ending with one `.requestFinished`. The request carries `now.wallMillis`
    /// as its `issued_ms`. With ``Requester/pendingRequestLimit`` requests already open, the
    /// oldest finishes first (reason `deadline`).
    public mutating func request(
        _ command: String, args: [String] = [], target: String = "", to: Endpoint? = nil,
        options: RequestOptions = RequestOptions(), now: Now
    ) -> (UInt32, [Action]) {
        let id = requester.request(command, args: args, target: target, to: to, options: options, now: now, view: membership.view, out: &outbox)
        return (id, outbox.take())
    }

    /// Revokes `ids` here and on every live member; the members' acknowledgements arrive as
    /// `.reply` events and the request ends when all have answered.
    public mutating func revoke(_ ids: [String], options: RequestOptions = RequestOptions(), now: Now) -> (UInt32, [Action]) {
        _ = sync.storeRevoked(ids, by: config.name, now: now, out: &outbox)
        var options = options
        if options.expected == nil { options.expected = membership.liveCount - 1 }
        let id = requester.request("revoke", args: ids, target: "", to: nil, options: options, now: now, view: membership.view, out: &outbox)
        if options.expected == 0 { requester.finish(id, .allReplied, out: &outbox) }
        publish(since: 0, now: now)
        return (id, outbox.take())
    }

    /// Replaces the cluster keys while running (rotation, Protocol.md §7.2): the first signs,
    /// every one verifies. Only from one non-empty set to another: turning authentication on
    /// or off changes every datagram and what is accepted, which takes a restart. Returns false,
    /// changing nothing, otherwise.
    public mutating func rotateKeys(_ keys: [AuthKey]) -> Bool {
        guard !keys.isEmpty, !config.keys.isEmpty else { return false }
        config.keys = keys
        outbox.codec = Codec(keys: keys)
        return true
    }

    /// This peer's own tags (Protocol.md §3.4.1).
    public var tags: MemberTags { outbox.tags }

    /// The tags of member `id` as this peer holds them; its own for its own id.
    public func tags(of id: NodeID) -> MemberTags {
        id == config.id ? outbox.tags : membership.tags(of: id)
    }

    /// Replaces this peer's tags: its incarnation rises and its entry, with the new tags, is
    /// multicast at once and once more a period later (§3.4.1). Nothing happens when the tags
    /// are the same.
    public mutating func setTags(_ tags: MemberTags, now: Now) -> [Action] {
        guard tags != outbox.tags else { return [] }
        outbox.setTags(tags)
        membership.ownTagsChanged(now: now, out: &outbox)
        publish(since: 0, now: now)
        return outbox.take()
    }

    /// Stops collecting a request early (the caller lost interest).
    public mutating func cancelRequest(_ id: UInt32) {
        requester.cancel(id)
    }

    /// The progress of request `id`; nil once it finished (or was never sent).
    public func progress(ofRequest id: UInt32) -> RequestProgress? {
        requester.progress(ofRequest: id)
    }

    /// Splits `args` into groups, in order, each small enough for one CONTROL_REQUEST from this
    /// peer: at most 64 arguments and one datagram (Protocol.md §3.5). A request that does not
    /// fit is not sent at all (it is counted as an `encode_oversized` drop), so callers with
    /// many arguments — a long list of ids to revoke — send one request per group.
    public func requestBatches(_ args: [String], command: String, target: String = "") -> [[String]] {
        Requester.batches(args, command: command, target: target, overhead: outbox.overhead)
    }
}
