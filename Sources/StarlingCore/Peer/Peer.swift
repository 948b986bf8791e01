/// The sans-IO protocol core of one Starling peer.
///
/// Every input is a `mutating` call that takes the current time and returns the actions to carry
/// out: datagrams to send, events to emit. The core reads no clock, opens no socket and starts no
/// thread; the agent's event loop and the simulator both drive this same type. Between calls the
/// shell wakes the core at ``nextDeadline`` through ``onTick(now:)``.
///
/// `Peer` is a coordinator: it checks what arrives (``Intake``), hands each message to the
/// component that owns its part of the protocol — ``Membership``, ``Sync``, ``Elections``, the
/// control plane's ``Responder`` and ``Requester`` — passes the values one needs of another, and
/// sends through one ``Outbox``.
public struct Peer: Sendable {
    public internal(set) var config: PeerConfig
    var outbox: Outbox
    var intake: Intake
    /// Bytes this peer may still send in answer to requests (Protocol.md §6.6).
    var answers: AnswerBudget
    var membership: Membership
    var sync: Sync
    var leadership: Elections
    var responder: Responder
    var requester = Requester(isMember: true)
    /// User events delivered, for de-duplication (issue 18, Protocol.md §6.7).
    var userEvents = UserEventLog()
    var started: Now?
    /// The time of the last input, to spot this peer's own stalls; nil before start.
    var lastActivity: UInt64?
    public internal(set) var stopped = false
    /// Extra `stats` fields the shell knows (interface, group, resident memory).
    public var hostInfo: [(String, JSON)] = []
    /// Why revokes cannot be kept durably right now; nil when they can (Peer+Durability.swift).
    public internal(set) var durabilityError: String? = nil

    public init(config: PeerConfig, clock: UInt64 = 0, revoked: [RevokedEntry] = [], nowMillis: UInt64 = 0) {
        self.config = config
        var rng = SplitMix64(seed: config.randomSeed)
        var set = RevokedSet(maxCount: config.revokedMaxCount, maxAgeMillis: config.revokedMaxAgeMillis)
        set.reserve(revoked.count)
        for entry in revoked { set.insert(entry.id, revokedAtMillis: entry.revokedAtMillis, nowMillis: nowMillis) }
        // Sort once now rather than while a joiner waits for its first page.
        if !set.isEmpty { _ = set.sortedIDs() }
        outbox = Outbox(config: config, clock: LamportClock(value: clock), firstRequestID: UInt32(truncatingIfNeeded: rng.next()) | 1)
        intake = Intake(config: config)
        answers = AnswerBudget(limits: config.limits, now: 0)
        membership = Membership(config: config, rng: rng)
        sync = Sync(config: config, revoked: set)
        leadership = Elections(config: config)
        responder = Responder(config: config)
    }

    // MARK: Inputs

    /// Starts the peer: announce (repeated with jitter), search for neighbours, begin probing.
    public mutating func start(now: Now) -> [Action] {
        outbox.actions.reserveCapacity(8)
        started = now
        lastActivity = now.nanos
        // One multicast for both: the first ANNOUNCE carries the first HELLO (§6.3.1).
        let hello = sync.start(now: now, out: &outbox)
        membership.start(now: now, digest: sync.revoked.digest, hello: hello, out: &outbox)
        return outbox.take()
    }

    /// Stops cleanly: says goodbye three times so that a single lost datagram does not turn a
    /// clean stop into a death.
    public mutating func stop(now: Now) -> [Action] {
        guard !stopped else { return [] }
        stopped = true
        membership.sendGoodbye(out: &outbox)
        return outbox.take()
    }

    /// Feeds one received datagram.
    public mutating func onDatagram(_ bytes: UnsafeRawBufferPointer, from source: Endpoint, now: Now) -> [Action] {
        guard !stopped else { return [] }
        handle(Result { () throws(WireError) in try outbox.codec.decode(bytes) }, raw: bytes, from: source, now: now)
        return outbox.take()
    }

    /// Feeds datagrams received together, in order. The same as one ``onDatagram(_:from:now:)``
    /// per datagram, but tags are checked four at a time (``Codec/decode(batch:)``).
    public mutating func onDatagrams(_ datagrams: [(bytes: UnsafeRawBufferPointer, source: Endpoint)], now: Now) -> [Action] {
        guard !stopped else { return [] }
        let results = outbox.codec.decode(batch: datagrams.map(\.bytes))
        for (datagram, result) in zip(datagrams, results) where !stopped {
            handle(result, raw: datagram.bytes, from: datagram.source, now: now)
        }
        return outbox.take()
    }

    /// Convenience for callers holding an array.
    public mutating func onDatagram(_ bytes: [UInt8], from source: Endpoint, now: Now) -> [Action] {
        bytes.withUnsafeBytes { onDatagram($0, from: source, now: now) }
    }

    /// Runs every timer that is due at `now`.
    public mutating func onTick(now: Now) -> [Action] {
        guard !stopped else { return [] }
        checkStall(now: now)
        apply(membership.tick(now: now, digest: sync.revoked.digest, out: &outbox), now: now)
        // A view update answers an ANNOUNCE late: it is charged like the answer (§6.6).
        for update in membership.takeDueViewUpdates(now: now) {
            answer(to: update.endpoint, now: now) { $0.membership.sendViewUpdate(update, now: now, out: &$0.outbox) }
        }
        sync.tick(now: now, view: membership.view, out: &outbox)
        answerElectRequests(leadership.tick(context: electionContext(now), out: &outbox))
        requester.tick(now: now, view: membership.view, out: &outbox)
        responder.tick(now: now)
        userEvents.prune(now: now.nanos, out: &outbox)
        responder.sendPaced(now: now, liveCount: membership.liveCount, out: &outbox)
        publish(since: 0, now: now)
        return outbox.take()
    }

    /// ``nextDeadline``, read through `inout`: a caller holding the peer in an array (the
    /// simulator, after every datagram and tick) reads it in place, where passing the peer to
    /// the getter copied the whole core, about 4 KB, first.
    public mutating func readNextDeadline() -> UInt64 { nextDeadline }

    /// The earliest time at which ``onTick(now:)`` has work to do. (Inlined, with its parts'
    /// deadlines, into ``readNextDeadline()``: a call would take each part by copy.)
    @inline(__always) public var nextDeadline: UInt64 {
        if stopped { return UInt64.max }
        var deadline = min(membership.nextDeadline, sync.nextDeadline)
        if let at = leadership.nextDeadline { deadline = min(deadline, at) }
        if let at = requester.nextDeadline { deadline = min(deadline, at) }
        if let at = responder.nextDeadline { deadline = min(deadline, at) }
        return deadline
    }

    // MARK: Receiving

    private mutating func handle(_ decoded: Result<Message, WireError>, raw: UnsafeRawBufferPointer, from source: Endpoint, now: Now) {
        outbox.beginInput()
        let mark = outbox.actions.count
        if case .failure(.unsupportedVersion(let version)) = decoded {
            intake.noteOtherVersion(version, name: Codec.senderName(ofDatagram: raw), from: source, out: &outbox)
        }
        let message: Message
        switch intake.admit(decoded, size: raw.count, from: source, now: now, out: &outbox) {
        case .dropped: return
        case .own(let own):
            // A GOODBYE in our name while we run is someone else's word: outbid it (§6.1.3).
            if own.payload.type == .goodbye, started != nil {
                membership.refute(claimedAt: own.header.incarnation, now: now, out: &outbox)
            }
            return
        case .accepted(let accepted): message = accepted
        }
        let header = message.header
        let replyTo = source.with(port: header.replyPort)
        func take(_ peer: inout Peer) {
            if !peer.config.faults.contains(.noClockAdjust) { peer.outbox.clock.adjust(to: header.stamp) }
            peer.checkStall(now: now)
            peer.dispatch(message, replyTo: replyTo, now: now)
        }
        // A request is answered only while its source has answer budget left (§6.6); a request
        // refused for it is not taken at all.
        if message.payload.type.isRequest {
            guard answer(to: replyTo, now: now, take) else { return }
        } else {
            take(&self)
        }
        publish(since: mark, now: now)
    }

    /// Runs `send` as an answer to `destination` (§6.6): not at all while `destination`, or this
    /// peer in all, has no answer budget left (dropped as `rate_limited`; returns false), else
    /// charged with the bytes it sent to `destination`.
    @discardableResult
    mutating func answer(to destination: Endpoint, now: Now, checked: Bool = true, _ send: (inout Peer) -> Void) -> Bool {
        if checked, !answers.allows(destination, now: now.nanos) {
            outbox.drop("rate_limited")
            return false
        }
        let start = outbox.actions.count
        send(&self)
        var bytes: UInt64 = 0
        for case .send(let datagram, .peer(let endpoint)) in outbox.actions[start...] where endpoint == destination {
            bytes = bytes.saturatingAdd(UInt64(datagram.count))
        }
        answers.charge(bytes, to: destination, now: now.nanos)
        return true
    }

    /// A peer whose own loop was late (paused, starved) must not blame others for the silence:
    /// every member's silence clock is moved forward by the time this peer itself was away.
    private mutating func checkStall(now: Now) {
        guard let last = lastActivity else { return }
        let gap = now.nanos &- last
        lastActivity = max(last, now.nanos)
        // Three of this peer's own periods, as local health stretches them (§6.1.7): a slowed peer
        // legitimately waits up to nine plain periods between its own timers, and took each such
        // wait for a stall, moving every deadline on so that no suspicion ever ran out.
        let period = membership.probing.health.scaled(config.protocolPeriod)
        let limit = max(period.saturatingAdd(period).saturatingAdd(period), .millis(500))
        guard gap > limit else { return }
        membership.shift(by: gap)
        outbox.emit(.stalled(millis: gap / 1_000_000))
    }

    /// Sends the events queued since `start` to the watchers.
    mutating func publish(since start: Int, now: Now) {
        // Read in place first: passing the responder to its method copies it, about 500 bytes,
        // after every datagram, and nearly always nobody watches.
        guard !responder.watchers.isEmpty else { return }
        responder.publish(since: start, now: now, liveCount: membership.liveCount, out: &outbox)
    }
}
