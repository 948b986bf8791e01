/// The revoked set and how it is kept in step (Protocol.md §3.2, §6.3): mingle at start, pulls
/// of pages from one peer at a time, anti-entropy with members whose digest differs, and the
/// expiry of old entries. What it reads of the membership view comes in as a ``MemberView``.
struct Sync: Sendable {
    let config: PeerConfig
    var revoked: RevokedSet
    var mingle = MingleState()
    var session: SyncSession?
    /// When a pull from each peer may start again.
    var cooldown: [NodeID: UInt64] = [:]
    var nextExpireAt: UInt64 = 0

    init(config: PeerConfig, revoked: RevokedSet) {
        self.config = config
        self.revoked = revoked
    }

    var isSynced: Bool { mingle.phase == .done }

    // Inlined into Peer.readNextDeadline(), which then reads it in place, not from a copy.
    @inline(__always) var nextDeadline: UInt64 {
        var deadline = nextExpireAt
        if let at = mingle.nextWake { deadline = min(deadline, at) }
        if let session { deadline = min(deadline, session.retryAt) }
        return deadline
    }

    /// Starts the mingle and returns its HELLO's request id. The first HELLO is not sent here:
    /// the peer's first ANNOUNCE carries it (§6.3.1); resends go as HELLOs.
    mutating func start(now: Now, out: inout Outbox) -> UInt32 {
        nextExpireAt = now.nanos + .millis(1_000)
        mingle = MingleState()
        mingle.phase = .searching
        mingle.requestID = out.newRequestID()
        mingle.startedAt = now.nanos
        mingle.aloneAt = now.nanos + config.aloneAfter
        mingle.deadline = now.nanos + config.mingleDeadline
        out.emit(.searching)
        noteHelloSent(now: now)
        return mingle.requestID
    }

    /// Starts with the mingle done and nothing sent (a warm start: the revoked set given at
    /// init is taken as the cluster's).
    mutating func startSettled(now: Now) {
        nextExpireAt = now.nanos + .millis(1_000)
        mingle = MingleState()
        mingle.phase = .done
        mingle.startedAt = now.nanos
    }

    mutating func tick(now: Now, view: MemberView, out: inout Outbox) {
        if now.nanos >= nextExpireAt {
            nextExpireAt = now.nanos + .millis(1_000)
            if revoked.expire(nowMillis: now.wallMillis) > 0 { out.append(.stateChanged) }
        }
        tickMingle(now: now, view: view, out: &out)
        tickPull(now: now, view: view, out: &out)
    }

    // MARK: Mingle

    private mutating func sendHello(now: Now, view: MemberView, out: inout Outbox) {
        out.send(.hello(Hello(requestID: mingle.requestID, revoked: revoked.digest)), to: view.searchDestinations())
        noteHelloSent(now: now)
    }

    private mutating func noteHelloSent(now: Now) {
        mingle.helloSends += 1
        mingle.lastHelloAt = now.nanos
        // Resend while replies are missing (loss), doubling the gap up to 16 × the first.
        mingle.nextHelloAt = now.nanos + mingle.helloGap << UInt64(min(mingle.helloSends - 1, 4))
    }

    /// The first reply to the first HELLO measures the round trip (Karn: a reply after a resend
    /// could answer either send): the replies still missing are due within a few of them, so
    /// the next resend comes 4 round trips after the last send, within 2–40 ms.
    private mutating func measureHelloRoundTrip(now: Now) {
        guard mingle.helloSends == 1, mingle.repliers.isEmpty else { return }
        let roundTrip = now.nanos &- min(now.nanos, mingle.lastHelloAt)
        let bounds = MingleState.helloGapBounds
        mingle.helloGap = min(max(roundTrip.saturatingMultiplied(by: 4), bounds.lowerBound), bounds.upperBound)
        mingle.nextHelloAt = min(mingle.nextHelloAt, mingle.lastHelloAt + mingle.helloGap)
    }

    /// A joiner's HELLO is answered by its responders only (Protocol.md §6.2; `responders` is
    /// how many the joiner should expect, nil when this peer is not one of them).
    func onHello(_ hello: Hello, from sender: NodeID, replyTo: Endpoint, responders: Int?, view: MemberView, out: inout Outbox) {
        guard let responders else { return }
        // Picked by id alone: selecting whole members moved them around on every comparison.
        let sample = view.members.values.lazy.filter { $0.isLive && $0.id != sender }.map(\.id).smallest(8, by: <)
            .compactMap { view.members[$0]?.entry() }
        let reply = HelloReply(requestID: hello.requestID, memberCount: UInt16(clamping: responders),
            revoked: revoked.digest, members: sample)
        out.send(.helloReply(reply), to: .peer(replyTo))
    }

    /// A neighbour answered the search (its gossip entries are merged by membership first).
    mutating func onHelloReply(_ reply: HelloReply, from sender: NodeID, replyTo: Endpoint, now: Now, out: inout Outbox) {
        guard mingle.phase == .searching, reply.requestID == mingle.requestID else { return }
        measureHelloRoundTrip(now: now)
        mingle.repliers[sender] = (replyTo, reply.revoked)
        mingle.expected = max(mingle.expected, Int(reply.memberCount))
        if mingle.settleAt == nil { mingle.settleAt = now.nanos + config.aloneAfter }
        if session == nil { pickMingleServer(now: now, out: &out) }
        finishMingleIfDone(now: now, out: &out)
    }

    /// Only one neighbour serves pages to a joiner: the first replier whose set differs.
    mutating func pickMingleServer(now: Now, out: inout Outbox) {
        let digest = revoked.digest
        let candidates = mingle.repliers.filter { $0.value.digest != digest && !mingle.triedServers.contains($0.key) }
        guard let (id, value) = candidates.min(by: { $0.value.digest.count > $1.value.digest.count || ($0.value.digest.count == $1.value.digest.count && $0.key < $1.key) }) else { return }
        mingle.triedServers.insert(id)
        startPull(from: id, at: value.endpoint, forMingle: true, now: now, out: &out)
    }

    mutating func finishMingleIfDone(now: Now, out: inout Outbox) {
        guard mingle.phase == .searching, session?.forMingle != true else { return }
        let heard = mingle.repliers.count
        if heard > 0, heard >= mingle.expected || mingle.settled {
            finishMingle(complete: true, out: &out)
        }
    }

    private mutating func finishMingle(complete: Bool, out: inout Outbox) {
        mingle.phase = .done
        if mingle.repliers.isEmpty {
            out.emit(.alone)
        } else {
            out.emit(.synced(nodes: mingle.repliers.count, clock: out.clock.value, received: mingle.received, complete: complete))
        }
    }

    private mutating func tickMingle(now: Now, view: MemberView, out: inout Outbox) {
        guard mingle.phase == .searching else { return }
        if now.nanos >= mingle.deadline {
            if session?.forMingle == true { session = nil }
            finishMingle(complete: false, out: &out)
            return
        }
        if mingle.repliers.isEmpty, now.nanos >= mingle.aloneAt {
            finishMingle(complete: true, out: &out)
            return
        }
        // Replies came but fewer than the largest member count promised (a member crashed and
        // is not yet found dead): finish once the pull is done and the others had their time.
        if let settleAt = mingle.settleAt, now.nanos >= settleAt {
            mingle.settleAt = nil
            mingle.settled = true
            finishMingleIfDone(now: now, out: &out)
            if mingle.phase != .searching { return }
        }
        if now.nanos >= mingle.nextHelloAt {
            // Only while replies are missing: once every responder answered, a resend would
            // only make them answer again.
            let missing = mingle.repliers.isEmpty || mingle.repliers.count < mingle.expected
            if missing, mingle.helloSends < MingleState.maxHelloSends {
                sendHello(now: now, view: view, out: &out)
            } else {
                mingle.nextHelloAt = mingle.deadline
            }
        }
    }

    // MARK: Local changes

    /// Stores ids revoked here (by a command or the embedding API) at the current wall time.
    mutating func storeRevoked(_ ids: [String], by: String, now: Now, out: inout Outbox) -> Int {
        // Distinct ids (as bytes) now held: `revoke a a` stores one (Protocol.md §3.5.2).
        var stored: Set<ByteString> = []
        for id in ids where Limits.revokedIDBytes.contains(id.utf8.count) {
            if revoked.insert(id, revokedAtMillis: now.wallMillis, nowMillis: now.wallMillis) || revoked.contains(id) { stored.insert(ByteString(id)) }
        }
        out.append(.stateChanged)
        out.emit(.revoked(ids: ids, by: by))
        return stored.count
    }
}
