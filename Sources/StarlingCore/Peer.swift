/// The sans-IO protocol core of one Starling peer.
///
/// Every input is a `mutating` call that takes the current time and returns the actions to carry
/// out: datagrams to send, events to emit. The core reads no clock, opens no socket and starts no
/// thread; the agent's event loop and the simulator both drive this same type. Between calls the
/// shell wakes the core at ``nextDeadline`` through ``onTick(now:)``.
public struct Peer: Sendable {
    public let config: PeerConfig
    let codec: Codec
    public internal(set) var clock = LamportClock()
    public internal(set) var incarnation: UInt32 = 0
    var sequence: UInt64 = 0
    public internal(set) var members: [NodeID: Member] = [:]
    /// Alive or suspect members (see ``liveCount``); changed only through `store(_:for:)`.
    var liveMembers = 0
    /// The latest node id seen under each name (as bytes), to spot restarts without scanning the view.
    var byName: [ByteString: NodeID] = [:]
    /// Members with status alive, in a list for picking probe helpers at random in O(1).
    var aliveList: [NodeID] = []
    var aliveIndex: [NodeID: Int] = [:]
    /// New members admitted per second (Protocol.md §6.6).
    var admissions: TokenBucket
    /// Bytes this peer may still send in answer to requests (Protocol.md §6.6).
    var answers: AnswerBudget
    /// Ids replaced by a restart under the same name, with the time of replacement (kept one
    /// reap time, to refuse second-hand gossip that would bring them back).
    var replaced: [NodeID: UInt64] = [:]
    public internal(set) var revoked: RevokedSet
    public internal(set) var counters = Counters()
    var rng: SplitMix64
    var started: Now?
    var lastActivity: UInt64 = 0
    public internal(set) var stopped = false

    // Membership timers.
    var nextBeatAt: UInt64 = 0
    var nextCheckAt: UInt64 = 0
    var nextPushPullAt: UInt64 = 0
    var nextExpireAt: UInt64 = 0
    var announcesLeft = 0
    var nextAnnounceAt: UInt64 = 0
    var gossipQueue: [NodeID: Int] = [:]
    var nextProbeID: UInt32 = 1
    /// Indirect probes this peer relays: its own probe id → (requester endpoint, requester's id).
    var relays: [UInt32: (requester: Endpoint, probeID: UInt32, target: NodeID, expires: UInt64)] = [:]
    var reaped: [NodeID: UInt64] = [:]
    var replay: [NodeID: ReplayWindow] = [:]

    // Mingle and anti-entropy.
    var mingle = MingleState()
    var sync: SyncSession?
    var syncCooldown: [NodeID: UInt64] = [:]
    var nextRequestID: UInt32 = 1

    // Election.
    /// Keyed by topic bytes (``ByteString``).
    public internal(set) var elections: [ByteString: ElectionState] = [:]
    var pendingElectReplies = ElectWaiters()

    // Control.
    var requests: [UInt32: PendingRequest] = [:]
    var recentRequests = RunOnceTable()
    var watchers: [Endpoint: Watcher] = [:]
    /// Extra `stats` fields the shell knows (interface, group, resident memory).
    public var hostInfo: [(String, JSON)] = []
    /// Why revokes cannot be kept durably right now; nil when they can (Peer+Durability.swift).
    public internal(set) var durabilityError: String? = nil

    public init(config: PeerConfig, clock: UInt64 = 0, revoked: [RevokedEntry] = [], nowMillis: UInt64 = 0) {
        self.config = config
        self.codec = Codec(keys: config.keys)
        self.clock = LamportClock(value: clock)
        self.rng = SplitMix64(seed: config.randomSeed)
        var set = RevokedSet(maxCount: config.revokedMaxCount, maxAgeMillis: config.revokedMaxAgeMillis)
        set.reserve(revoked.count)
        for entry in revoked { set.insert(entry.id, revokedAtMillis: entry.revokedAtMillis, nowMillis: nowMillis) }
        // Sort once now rather than while a joiner waits for its first page.
        if !set.isEmpty { _ = set.sortedIDs() }
        self.revoked = set
        self.nextRequestID = UInt32(truncatingIfNeeded: rng.next()) | 1
        self.admissions = TokenBucket(capacity: config.limits.admissionBurst, perSecond: config.limits.admissionsPerSecond, now: 0)
        self.answers = AnswerBudget(limits: config.limits, now: 0)
    }

    // MARK: Inputs

    /// Starts the peer: announce (repeated with jitter), search for neighbours, begin beating.
    public mutating func start(now: Now) -> [Action] {
        var actions: [Action] = []
        actions.reserveCapacity(8)
        started = now
        lastActivity = now.nanos
        announcesLeft = config.announceCount
        nextAnnounceAt = now.nanos
        nextBeatAt = now.nanos + config.heartbeatInterval
        nextCheckAt = now.nanos + config.heartbeatInterval
        nextPushPullAt = now.nanos + config.pushPullInterval
        nextExpireAt = now.nanos + .millis(1_000)
        sendAnnounce(now: now, into: &actions)
        startMingle(now: now, into: &actions)
        return actions
    }

    /// Stops cleanly: says goodbye three times so that a single lost datagram does not turn a
    /// clean stop into a death.
    public mutating func stop(now: Now) -> [Action] {
        var actions: [Action] = []
        guard !stopped else { return actions }
        stopped = true
        for _ in 0..<3 { send(.goodbye, to: beatDestinations(), into: &actions) }
        return actions
    }

    /// Feeds one received datagram.
    public mutating func onDatagram(_ bytes: UnsafeRawBufferPointer, from source: Endpoint, now: Now) -> [Action] {
        var actions: [Action] = []
        guard !stopped else { return actions }
        handle(Result { () throws(WireError) in try codec.decode(bytes) }, size: bytes.count, from: source, now: now, into: &actions)
        return actions
    }

    /// Feeds datagrams received together, in order. The same as one ``onDatagram(_:from:now:)``
    /// per datagram, but tags are checked four at a time (``Codec/decode(batch:)``).
    public mutating func onDatagrams(_ datagrams: [(bytes: UnsafeRawBufferPointer, source: Endpoint)], now: Now) -> [Action] {
        var actions: [Action] = []
        guard !stopped else { return actions }
        let results = codec.decode(batch: datagrams.map(\.bytes))
        for (datagram, result) in zip(datagrams, results) where !stopped {
            handle(result, size: datagram.bytes.count, from: datagram.source, now: now, into: &actions)
        }
        return actions
    }

    private mutating func handle(
        _ decoded: Result<Message, WireError>, size: Int, from source: Endpoint, now: Now, into actions: inout [Action]
    ) {
        let mark = actions.count
        counters.datagramsIn += 1
        counters.bytesIn += UInt64(size)
        let message: Message
        switch decoded {
        case .success(let decodedMessage): message = decodedMessage
        case .failure(let error):
            counters.drop(error.reason)
            actions.append(.emit(.dropped(reason: error.reason, from: source)))
            return
        }
        let header = message.header
        guard bytesEqual(header.cluster, config.cluster) else {
            counters.drop("foreign_cluster")
            actions.append(.emit(.dropped(reason: "foreign_cluster", from: source)))
            return
        }
        guard header.sender != config.id else {
            // Our own multicast looped back: expected, counted, never logged. A GOODBYE in our
            // name while we run is someone else's word, though: outbid it (Protocol.md §6.1.3).
            counters.drop("own")
            if message.payload.type == .goodbye, started != nil {
                refute(claimedAt: header.incarnation, now: now, into: &actions)
            }
            return
        }
        if !config.keys.isEmpty {
            guard acceptSequence(header.sequence, from: header.sender, now: now) else {
                counters.drop("replay")
                actions.append(.emit(.dropped(reason: "replay", from: source)))
                return
            }
        }
        let replyTo = Endpoint(address: source.address, port: header.replyPort)
        // A request is answered only while its source has answer budget left (§6.6).
        let answersFrom = actions.count
        if message.payload.type.isRequest, started != nil, !answers.allows(replyTo, now: now.nanos) {
            counters.drop("rate_limited")
            return
        }
        if !config.faults.contains(.noClockAdjust) { clock.adjust(to: header.stamp) }
        checkStall(now: now, into: &actions)
        dispatch(message, replyTo: replyTo, now: now, into: &actions)
        if message.payload.type.isRequest { chargeAnswers(actions[answersFrom...], to: replyTo, now: now) }
        publish(&actions, since: mark, now: now)
    }

    /// The replay window of `sender` (Protocol.md §7.3); a full table forgets the sender heard
    /// from least recently, never all of them at once.
    private mutating func acceptSequence(_ sequence: UInt64, from sender: NodeID, now: Now) -> Bool {
        var window = replay[sender] ?? ReplayWindow()
        guard window.accept(sequence) else { return false }
        window.lastUsed = now.nanos
        if replay[sender] == nil, replay.count >= config.limits.replayWindows,
            let oldest = replay.min(by: { $0.value.lastUsed < $1.value.lastUsed })?.key {
            replay[oldest] = nil
            counters.drop("replay_windows_full")
        }
        replay[sender] = window
        return true
    }

    private mutating func chargeAnswers(_ sent: ArraySlice<Action>, to replyTo: Endpoint, now: Now) {
        var bytes: UInt64 = 0
        for case .send(let datagram, .peer(let endpoint)) in sent where endpoint == replyTo { bytes += UInt64(datagram.count) }
        answers.charge(bytes, to: replyTo, now: now.nanos)
    }

    /// Convenience for callers holding an array.
    public mutating func onDatagram(_ bytes: [UInt8], from source: Endpoint, now: Now) -> [Action] {
        bytes.withUnsafeBytes { onDatagram($0, from: source, now: now) }
    }

    /// Runs every timer that is due at `now`.
    public mutating func onTick(now: Now) -> [Action] {
        var actions: [Action] = []
        guard !stopped else { return actions }
        guard started != nil else {
            // A requester that is not a member (the CLI) still has request deadlines.
            tickRequests(now: now, into: &actions)
            return actions
        }
        checkStall(now: now, into: &actions)
        tickMembership(now: now, into: &actions)
        tickMingle(now: now, into: &actions)
        tickSync(now: now, into: &actions)
        tickElections(now: now, into: &actions)
        tickRequests(now: now, into: &actions)
        publish(&actions, now: now)
        return actions
    }

    /// The earliest time at which ``onTick(now:)`` has work to do.
    public var nextDeadline: UInt64 {
        if stopped { return UInt64.max }
        if started == nil { return requests.values.map(\.nextWake).min() ?? UInt64.max }
        var deadline = min(nextBeatAt, nextCheckAt, nextPushPullAt, nextExpireAt)
        if announcesLeft > 0 { deadline = min(deadline, nextAnnounceAt) }
        if let at = mingle.nextWake { deadline = min(deadline, at) }
        if let sync { deadline = min(deadline, sync.retryAt) }
        for election in elections.values { if let at = election.nextWake { deadline = min(deadline, at) } }
        for request in requests.values { deadline = min(deadline, request.nextWake) }
        return deadline
    }

    // MARK: Dispatch

    private mutating func dispatch(_ message: Message, replyTo: Endpoint, now: Now, into actions: inout [Action]) {
        let header = message.header
        // Before start this is a requester only (the CLI): replies are all it takes.
        if started == nil, message.payload.type != .controlReply {
            counters.drop("not_started")
            return
        }
        switch message.payload {
        case .controlRequest(let request):
            onControlRequest(request, header: header, replyTo: replyTo, now: now, into: &actions)
            return
        case .controlReply(let reply):
            onControlReply(reply, header: header, replyTo: replyTo, now: now, into: &actions)
            return
        case .goodbye:
            onGoodbye(header, now: now, into: &actions)
            return
        default:
            break
        }
        // Every other type comes from a peer: it proves the sender alive.
        let intervalHint: UInt32?
        switch message.payload {
        case .announce(let beat), .heartbeat(let beat): intervalHint = beat.intervalMillis
        default: intervalHint = nil
        }
        heardFrom(header, at: replyTo, intervalMillis: intervalHint, now: now, into: &actions)
        // A sender the view has no room for is heard no further.
        guard members[header.sender] != nil else { return }
        switch message.payload {
        case .announce(let beat): onBeat(beat, header: header, announce: true, replyTo: replyTo, now: now, into: &actions)
        case .heartbeat(let beat): onBeat(beat, header: header, announce: false, replyTo: replyTo, now: now, into: &actions)
        case .probe(let probe): onProbe(probe, header: header, replyTo: replyTo, now: now, into: &actions)
        case .probeAck(let probe): onProbeAck(probe, header: header, now: now, into: &actions)
        case .members(let page): onMembersPage(page, header: header, replyTo: replyTo, now: now, into: &actions)
        case .hello(let hello): onHello(hello, header: header, replyTo: replyTo, now: now, into: &actions)
        case .helloReply(let reply): onHelloReply(reply, header: header, replyTo: replyTo, now: now, into: &actions)
        case .pageRequest(let request): onPageRequest(request, replyTo: replyTo, into: &actions)
        case .page(let page): onPage(page, header: header, now: now, into: &actions)
        case .digestRequest(let requestID):
            send(.digestReply(DigestReply(requestID: requestID, buckets: revoked.bucketDigests)), to: .peer(replyTo), into: &actions)
        case .digestReply(let reply): onDigestReply(reply, header: header, now: now, into: &actions)
        case .candidacy(let candidacy): onCandidacy(candidacy, header: header, now: now, into: &actions)
        case .leader(let leader): onLeader(leader, header: header, replyTo: replyTo, now: now, into: &actions)
        case .vote(let vote): onVote(vote, header: header, now: now, into: &actions)
        case .controlRequest, .controlReply, .goodbye: break
        }
    }

    // MARK: Sending

    /// Stamps, encodes and queues one datagram. Encoding can only fail on a value the caller let
    /// through unchecked; it is counted, never trapped on.
    mutating func send(_ payload: Payload, to destinations: [Destination], into actions: inout [Action]) {
        guard !destinations.isEmpty else { return }
        sequence += 1
        let header = Header(
            sequence: sequence, stamp: clock.tick(), sender: config.id, incarnation: incarnation,
            replyPort: config.replyPort, cluster: config.cluster, name: config.name)
        do {
            let bytes = try codec.encode(Message(header: header, payload: payload))
            for destination in destinations {
                counters.datagramsOut += 1
                counters.bytesOut += UInt64(bytes.count)
                actions.append(.send(bytes, destination))
            }
        } catch {
            counters.drop("encode_\(error.reason)")
        }
    }

    mutating func send(_ payload: Payload, to destination: Destination, into actions: inout [Action]) {
        send(payload, to: [destination], into: &actions)
    }

    /// Where beats and announcements go: the group, or every known member when multicast is off.
    func beatDestinations() -> [Destination] {
        if config.multicast { return [.group] }
        var targets = Set(members.values.filter(\.isLive).map(\.endpoint))
        targets.formUnion(config.seeds)
        return targets.map { .peer($0) }
    }

    /// Bytes a header of this peer takes, plus the payload length field and the tag.
    var overhead: Int {
        Limits.fixedHeader + config.cluster.utf8.count + config.name.utf8.count + 2
            + (config.keys.isEmpty ? 0 : Limits.tagLength)
    }

    mutating func newRequestID() -> UInt32 {
        nextRequestID &+= 1
        if nextRequestID == 0 { nextRequestID = 1 }
        return nextRequestID
    }

    /// A peer whose own loop was late (paused, starved) must not blame others for the silence:
    /// every member's silence clock is moved forward by the time this peer itself was away.
    private mutating func checkStall(now: Now, into actions: inout [Action]) {
        let gap = now.nanos &- lastActivity
        lastActivity = max(lastActivity, now.nanos)
        let limit = max(config.heartbeatInterval * 3, .millis(500))
        guard gap > limit, started != nil else { return }
        for id in members.keys {
            members[id]?.shift(by: gap)
        }
        actions.append(.emit(.stalled(millis: gap / 1_000_000)))
    }
}
