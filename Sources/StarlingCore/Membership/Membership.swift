/// Membership (Protocol.md §3.1, §6.1): the view of the other members, heartbeats and
/// announcements, gossip, suspicion and probes, refutation, goodbye and push-pull. It owns its
/// state; what it needs of the rest of the peer (the revoked-set digest its beats carry) comes
/// in as values, and the changes other components act on go out as ``MembershipChange`` values.
struct Membership: Sendable {
    let config: PeerConfig
    var members: [NodeID: Member] = [:]
    /// Alive or suspect members (see ``liveCount``); changed only through `store(_:for:)`.
    private(set) var liveMembers = 0
    /// The latest node id seen under each name (as bytes), to spot restarts without scanning the view.
    private(set) var byName: [ByteString: NodeID] = [:]
    /// Members with status alive, in a list for picking probe helpers at random in O(1).
    var aliveList: [NodeID] = []
    var aliveIndex: [NodeID: Int] = [:]
    /// New members admitted per second (Protocol.md §6.6).
    var admissions: TokenBucket
    /// Ids replaced by a restart under the same name, with the time of replacement (kept one
    /// reap time, to refuse second-hand gossip that would bring them back).
    var replaced: [NodeID: UInt64] = [:]
    var reaped: [NodeID: UInt64] = [:]
    var gossipQueue: [NodeID: Int] = [:]
    var nextProbeID: UInt32 = 1
    /// Indirect probes this peer relays: its own probe id → (requester endpoint, requester's id).
    var relays: [UInt32: Relay] = [:]
    var rng: SplitMix64
    /// Changes made by the call in progress, returned by it.
    var changes: [MembershipChange] = []

    // Timers.
    var nextBeatAt: UInt64 = 0
    var nextCheckAt: UInt64 = 0
    var nextPushPullAt: UInt64 = 0
    var nextRelayExpiryAt: UInt64 = 0
    var announcesLeft = 0
    var nextAnnounceAt: UInt64 = 0

    struct Relay: Sendable {
        var requester: Endpoint
        var probeID: UInt32
        var target: NodeID
        var expires: UInt64
    }

    init(config: PeerConfig, rng: SplitMix64) {
        self.config = config
        self.rng = rng
        admissions = TokenBucket(capacity: config.limits.admissionBurst, perSecond: config.limits.admissionsPerSecond, now: 0)
    }

    /// Members alive or suspect, this peer included. Kept as a counter: recounting the view on
    /// every beat and gossip entry made a 1,000-node simulation cubic.
    var liveCount: Int { liveMembers + 1 }

    var view: MemberView {
        MemberView(members: members, me: config.id, liveCount: liveCount, aliveCount: aliveList.count, multicast: config.multicast, seeds: config.seeds)
    }

    var nextDeadline: UInt64 {
        var deadline = min(nextBeatAt, nextCheckAt, nextPushPullAt, nextRelayExpiryAt)
        if announcesLeft > 0 { deadline = min(deadline, nextAnnounceAt) }
        return deadline
    }

    /// Announces (repeated with jitter) and sets the timers.
    mutating func start(now: Now, digest: SetDigest, out: inout Outbox) {
        announcesLeft = config.announceCount
        nextAnnounceAt = now.nanos
        nextBeatAt = now.nanos + config.heartbeatInterval
        nextCheckAt = now.nanos + config.heartbeatInterval
        nextPushPullAt = now.nanos + config.pushPullInterval
        nextRelayExpiryAt = now.nanos + .millis(1_000)
        sendAnnounce(now: now, digest: digest, out: &out)
    }

    /// Adds, replaces or removes a member, keeping the live counter exact.
    mutating func store(_ member: Member?, for id: NodeID) {
        if let old = members[id] {
            if old.isLive { liveMembers -= 1 }
            if byName[ByteString(old.name)] == id { byName[ByteString(old.name)] = nil }
            if old.status == .alive, let index = aliveIndex.removeValue(forKey: id) {
                // Swap-remove: order does not matter, picks are random.
                let last = aliveList.removeLast()
                if index < aliveList.count {
                    aliveList[index] = last
                    aliveIndex[last] = index
                }
            }
        }
        if let member {
            if member.isLive { liveMembers += 1 }
            byName[ByteString(member.name)] = id
            if member.status == .alive {
                aliveIndex[id] = aliveList.count
                aliveList.append(id)
            }
        }
        members[id] = member
    }

    /// Whether one more member may enter the view now (Protocol.md §6.6): the view has room
    /// (a dead or departed member makes room if needed) and the admission rate allows it.
    mutating func admitNewMember(now: Now, out: inout Outbox) -> Bool {
        if members.count >= config.limits.members {
            let gone = members.values.filter { !$0.isLive }.min { ($0.statusSince, $0.id) < ($1.statusSince, $1.id) }
            guard let gone else {
                out.drop("members_full")
                return false
            }
            store(nil, for: gone.id)
            gossipQueue[gone.id] = nil
        }
        guard admissions.hasTokens(now: now.nanos) else {
            out.drop("admission_limited")
            return false
        }
        admissions.take(1, now: now.nanos)
        return true
    }

    /// A peer whose own loop was late moves every member's silence clock forward by the gap.
    mutating func shift(by gap: UInt64) {
        for id in members.keys {
            members[id]?.shift(by: gap)
        }
    }

    // MARK: Beats and gossip

    func makeBeat(gossip: [MemberEntry], digest: SetDigest) -> Beat {
        Beat(intervalMillis: config.intervalMillis, memberCount: UInt16(clamping: liveCount), revoked: digest, gossip: gossip)
    }

    /// Takes up to `gossipPerBeat` queued changes, most-needed first, and counts them sent.
    mutating func takeGossip() -> [MemberEntry] {
        guard !gossipQueue.isEmpty else { return [] }
        // The most-needed entries first (ties by id), without sorting the whole queue.
        let picked = gossipQueue.smallest(config.gossipPerBeat) { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }
        var entries: [MemberEntry] = []
        for (id, left) in picked {
            if left <= 1 { gossipQueue[id] = nil } else { gossipQueue[id] = left - 1 }
            if let member = members[id] { entries.append(member.entry()) }
        }
        return entries
    }

    /// Queues a member's current state for piggybacking on the next beats, about 3·log2(N) times.
    mutating func enqueueGossip(_ id: NodeID) {
        var transmissions = 3
        var n = liveCount
        while n > 1 { transmissions += 3; n /= 2 }
        gossipQueue[id] = transmissions
    }

    mutating func sendAnnounce(now: Now, digest: SetDigest, out: inout Outbox) {
        out.send(.announce(makeBeat(gossip: [], digest: digest)), to: view.searchDestinations())
        announcesLeft -= 1
        // Repeats spread over ~100 ms with jitter so two peers started together still meet.
        let spread = UInt64.millis(30) * UInt64(config.announceCount - announcesLeft)
        nextAnnounceAt = now.nanos + spread + rng.next() % .millis(20)
    }

    mutating func sendHeartbeat(now: Now, digest: SetDigest, out: inout Outbox) {
        out.send(.heartbeat(makeBeat(gossip: takeGossip(), digest: digest)), to: view.beatDestinations())
        nextBeatAt = now.nanos + config.heartbeatInterval
    }

    /// Says goodbye three times so that a single lost datagram does not turn a clean stop into
    /// a death.
    func sendGoodbye(out: inout Outbox) {
        for _ in 0..<3 { out.send(.goodbye, to: view.beatDestinations()) }
    }

    /// Takes the changes the call in progress made.
    mutating func takeChanges() -> [MembershipChange] {
        guard !changes.isEmpty else { return [] }
        defer { changes = [] }
        return changes
    }
}

extension MemberStatus {
    var isLiveStatus: Bool { self == .alive || self == .suspect }
}
