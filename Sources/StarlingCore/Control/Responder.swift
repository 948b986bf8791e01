/// Answering control requests (Protocol.md §3.5.1, §6.5, §7.3): the run-once table, freshness of
/// commands with effects, reply paging, `watch` streams and `elect` requests waiting for a
/// decision. The commands themselves read the whole peer and run in ``Peer`` (Peer+Commands).
struct Responder: Sendable {
    /// Watchers at once; more `watch` requests are refused (`watchers_full`).
    static let watcherLimit = 64
    static let watchLifetime: UInt64 = .millis(10_000)
    /// A command with effects runs only within this many milliseconds of its `issued_ms`
    /// (keyed clusters, Protocol.md §7.3).
    static let requestWindowMillis: UInt64 = 30_000
    /// How long a request without effects is remembered (long enough for the requester's retries).
    static let repeatMemory: UInt64 = .millis(10_000)
    /// How long a command with effects is remembered: it passes the window check at most
    /// `2 × requestWindowMillis` of this agent's time apart, so no repeat can run it again.
    static let effectsMemory: UInt64 = .millis(2 * requestWindowMillis)

    let config: PeerConfig
    var recent = RunOnceTable()
    var watchers: [Endpoint: Watcher] = [:]
    var electWaiters = ElectWaiters()
    /// Commands the embedder registered, and the requests their handlers run (§3.5.3).
    var custom = CustomCommands()
    /// Replies waiting out their pacing delay (§6.5), at most ``pacedReplyLimit``.
    var paced: [PacedReply] = []
    /// Paced replies held at once; beyond it a reply goes out at once (`paced_full`).
    static let pacedReplyLimit = 1_024
    /// Draws pacing delays; seeded apart from the membership's generator so that pacing does not
    /// change which members a seeded simulation probes.
    var rng: SplitMix64

    init(config: PeerConfig) {
        self.config = config
        rng = SplitMix64(seed: config.randomSeed ^ 0x5061_6365_5265_706C)
    }

    /// When the earliest paced reply is due.
    // Inlined into Peer.readNextDeadline(), which then reads it in place, not from a copy.
    @inline(__always) var nextDeadline: UInt64? { paced.lazy.map(\.dueAt).min() }

    /// Commands that change something: they run at most once ever, not only once per memory.
    /// A registered command may do anything, so it counts as one.
    func hasEffects(_ command: String) -> Bool {
        switch command {
        case "revoke", "shutdown", "reload", "elect", "watch", "event": true
        default: custom.handles(command)
        }
    }

    /// Whether `request` is to run now. A repeat is answered from the first run's reply, and a
    /// stale command or one the run-once table has no room for is refused; then it does not run.
    mutating func admit(_ request: ControlRequest, from sender: NodeID, replyTo: Endpoint, now: Now, started: Now?, liveCount: Int, tags: MemberTags, out: inout Outbox) -> Bool {
        guard Glob.matchesTarget(request.target, config.name, tags: tags) else { return false }
        let key = RequestKey(sender: sender, requestID: request.requestID)
        recent.prune(now: now.nanos)
        // The same request may come again (group and unicast, a retry for a lost reply, or a
        // replay): run it once, and answer a repeat from the first run's reply.
        if let answered = recent[key] {
            if let body = answered.body { sendReply(requestID: request.requestID, status: answered.status, body: body, to: replyTo, liveCount: liveCount, out: &out) }
            return false
        }
        let effects = hasEffects(request.command)
        if effects, let reason = staleness(of: request, now: now, started: started) {
            out.drop("stale_request")
            sendReply(requestID: request.requestID, status: .refused, body: Self.error(reason), to: replyTo, liveCount: liveCount, out: &out)
            return false
        }
        if recent.hasRoom(effects: effects) {
            recent.record(key, expires: UInt64.later(now.nanos, effects ? Self.effectsMemory : Self.repeatMemory))
        } else if effects {
            // Forgetting an entry to make room could let its request run a second time.
            out.drop("run_once_full")
            let message = "too many recent requests to remember one more; try again in a minute"
            sendReply(requestID: request.requestID, status: .refused, body: Self.error(message), to: replyTo, liveCount: liveCount, out: &out)
            return false
        }
        // (A request without effects and no room runs unremembered: a repeat runs it again.)
        return true
    }

    /// Sends the reply of a request that ran, and keeps it for repeats. A request many agents
    /// answer is answered after a random part of its pacing window (§6.5); a repeat of it is
    /// answered at once from the kept reply. Returns the bytes held back, which the caller
    /// charges to the requester's answer budget now (§6.6), as if they had been sent.
    @discardableResult
    mutating func answer(_ request: ControlRequest, from sender: NodeID, status: ControlStatus, body: String, replyTo: Endpoint, liveCount: Int, now: Now, out: inout Outbox) -> UInt64 {
        recent.keep(RequestKey(sender: sender, requestID: request.requestID), status: status, body: body)
        let window = ReplyPacing.window(responders: ReplyPacing.responders(target: request.target, liveCount: liveCount))
        let delay = ReplyPacing.delay(window: window, using: &rng)
        guard delay > 0, paced.count < Self.pacedReplyLimit else {
            if delay > 0 { out.drop("paced_full") }
            sendReply(requestID: request.requestID, status: status, body: body, to: replyTo, liveCount: liveCount, out: &out)
            return 0
        }
        paced.append(PacedReply(dueAt: UInt64.later(now.nanos, delay), requestID: request.requestID, status: status, body: body, endpoint: replyTo))
        let pages = UInt64(max(1, (body.utf8.count + replyChunk(out) - 1) / replyChunk(out)))
        return UInt64(body.utf8.count) + pages * UInt64(out.overhead + 13)
    }

    /// Body bytes per CONTROL_REPLY page.
    func replyChunk(_ out: Outbox) -> Int { Limits.maxDatagram - out.overhead - 13 }

    /// Sends the paced replies that are due.
    mutating func sendPaced(now: Now, liveCount: Int, out: inout Outbox) {
        guard paced.contains(where: { $0.dueAt <= now.nanos }) else { return }
        var waiting: [PacedReply] = []
        for reply in paced {
            if reply.dueAt <= now.nanos {
                sendReply(requestID: reply.requestID, status: reply.status, body: reply.body, to: reply.endpoint, liveCount: liveCount, out: &out)
            } else {
                waiting.append(reply)
            }
        }
        paced = waiting
    }

    /// Why a command with effects must not run, or nil (Protocol.md §7.3): in a keyed cluster a
    /// request runs only within the request window around this agent's clock and not when
    /// issued before this agent started, so a captured request cannot be replayed into a
    /// restarted agent or after the sequence windows were cleared. Without a key anyone may send
    /// any command anyway (§7.4): `issued_ms` is not checked.
    func staleness(of request: ControlRequest, now: Now, started: Now?) -> String? {
        guard !config.keys.isEmpty else { return nil }
        let issued = request.issuedMillis
        let skew = issued > now.wallMillis ? issued - now.wallMillis : now.wallMillis - issued
        if skew > Self.requestWindowMillis {
            return "stale request: issued_ms is \(skew) ms away from this agent's clock, outside the \(Self.requestWindowMillis / 1_000) s window (replayed, or clocks out of sync)"
        }
        if let started, issued < started.wallMillis {
            return "stale request: issued before this agent started"
        }
        return nil
    }

    /// Pages a JSON body into CONTROL_REPLY datagrams.
    func sendReply(requestID: UInt32, status: ControlStatus, body: String, to endpoint: Endpoint, liveCount: Int, out: inout Outbox) {
        let bytes = Array(body.utf8)
        let chunk = replyChunk(out)
        let count = max(1, (bytes.count + chunk - 1) / chunk)
        guard let pageCount = UInt16(exactly: count) else {
            out.drop("reply_oversized")
            return
        }
        for page in 0..<pageCount {
            let start = Int(page) * chunk
            let slice = Array(bytes[min(start, bytes.count)..<min(start + chunk, bytes.count)])
            let reply = ControlReply(requestID: requestID, status: status, memberCount: UInt16(clamping: liveCount),
                page: page, pageCount: pageCount, body: slice)
            out.send(.controlReply(reply), to: .peer(endpoint))
        }
    }

    // MARK: Watchers

    /// Registers (or renews) the watcher at `endpoint`; false when ``watcherLimit`` others watch.
    mutating func addWatcher(_ endpoint: Endpoint, requestID: UInt32, now: Now) -> Bool {
        guard watchers[endpoint] != nil || watchers.count < Self.watcherLimit else { return false }
        watchers[endpoint] = Watcher(requestID: requestID, expires: UInt64.later(now.nanos, Self.watchLifetime))
        return true
    }

    /// Sends each cluster event queued in the outbox from `start` on to the registered
    /// watchers. Every input publishes once, only the actions it queued itself: scanning further
    /// back would send an earlier datagram's events again (issue 14 item 7).
    func publish(since start: Int = 0, now: Now, liveCount: Int, out: inout Outbox) {
        guard !watchers.isEmpty, start >= 0, start < out.actions.count else { return }
        let events: [PeerEvent] = out.actions[start...].compactMap { if case .emit(let event) = $0 { event } else { nil } }
        for event in events {
            guard let json = Peer.eventJSON(event, source: config.name, wallMillis: now.wallMillis) else { continue }
            let body = json.serialized()
            for (endpoint, watcher) in watchers.sorted(by: { $0.key.precedes($1.key) }) {
                sendReply(requestID: watcher.requestID, status: .ok, body: body, to: endpoint, liveCount: liveCount, out: &out)
            }
        }
    }

    // MARK: Elect requests

    /// Holds an `elect` request's reply until `topic` is decided; false when too many wait.
    mutating func awaitDecision(on topic: String, sender: NodeID, replyTo: Endpoint, requestID: UInt32, now: Now) -> Bool {
        electWaiters.add(topic, sender: sender, endpoint: replyTo, requestID: requestID, now: now.nanos)
    }

    /// Replies to the `elect` requests waiting on a decided topic, and keeps the answer for
    /// their retries.
    mutating func answerElectRequests(_ decision: Decision, liveCount: Int, out: inout Outbox) {
        let waiting = electWaiters.take(decision.topic)
        guard !waiting.isEmpty else { return }
        let body = Self.leaderJSON(name: config.name, topic: decision.topic, leader: decision.leader, term: decision.term).serialized()
        for waiter in waiting {
            recent.keep(RequestKey(sender: waiter.sender, requestID: waiter.requestID), status: .ok, body: body)
            sendReply(requestID: waiter.requestID, status: .ok, body: body, to: waiter.endpoint, liveCount: liveCount, out: &out)
        }
    }

    /// Forgets the reply bodies kept for repeats (the shell withheld replies it could not stand
    /// behind); the requests stay remembered, so a repeat goes unanswered rather than run again.
    mutating func dropKeptReplies() { recent.dropKeptReplies() }

    /// Forgets expired entries of the control tables.
    mutating func tick(now: Now) {
        recent.prune(now: now.nanos)
        electWaiters.prune(now: now.nanos)
        custom.prune(now: now.nanos)
        // At most `watcherLimit` entries: a pass per tick is cheap.
        if !watchers.isEmpty { watchers = watchers.filter { $0.value.expires > now.nanos } }
    }

    static func error(_ message: String) -> String {
        JSON.object([("error", .string(message))]).serialized()
    }

    /// The body of `leader TOPIC` and of an answered `elect`.
    static func leaderJSON(name: String, topic: String, leader: String?, term: UInt64) -> JSON {
        .object([("name", .string(name)), ("topic", .string(topic)), ("leader", leader.map { .string($0) } ?? .null), ("term", .int(term))])
    }
}
