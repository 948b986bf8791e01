/// Control plane (Protocol.md §3.5, §6.5): answering requests, collecting replies, watchers.

/// Options for a request this peer sends and collects replies to.
public struct RequestOptions: Sendable {
    /// Stop after this many replies.
    public var limit: Int?
    /// Replies expected; nil lets the replies' member counts tell.
    public var expected: Int?
    /// Stop when no reply came for this long (after the first).
    public var idleTimeout: UInt64 = .millis(250)
    /// Never collect longer than this.
    public var deadline: UInt64 = .millis(2_000)
    /// Keep taking replies from the same responders (a `watch` stream) until the deadline.
    public var stream = false

    public init(limit: Int? = nil, expected: Int? = nil, idleTimeout: UInt64 = .millis(250), deadline: UInt64 = .millis(2_000)) {
        self.limit = limit
        self.expected = expected
        self.idleTimeout = idleTimeout
        self.deadline = deadline
    }
}

/// One responder's reply while its pages come in.
struct PartialReply: Sendable {
    var name: String
    var status: ControlStatus
    var pageCount: UInt16
    var pages: [UInt16: [UInt8]] = [:]
    /// What the pages cost against the request's ``Peer/heldBytesLimit``.
    var held = 0
}

struct PendingRequest: Sendable {
    var request: ControlRequest
    var options: RequestOptions
    var startedAt: UInt64
    var lastReplyAt: UInt64?
    var expected: Int?
    /// Replies' member counts tell how many to expect only when every agent is addressed.
    var useMemberCount = true
    var partial: [NodeID: PartialReply] = [:]
    var done: Set<NodeID> = []
    /// Where each responder's replies came from, to ask it again for missing pages.
    var responders: [NodeID: Endpoint] = [:]
    var retries = 0
    /// Bytes held for this request's replies (pages in, responders known), bounded by
    /// ``Peer/heldBytesLimit`` so that forged replies cannot grow a requester without end.
    var held = 0

    var nextWake: UInt64 {
        let hard = Peer.later(startedAt, options.deadline)
        guard let lastReplyAt, !options.stream else { return hard }
        return min(hard, Peer.later(lastReplyAt, options.idleTimeout))
    }
}

extension Peer {
    /// Requests this peer collects replies to at once; a new one beyond this finishes the oldest
    /// (reason `deadline`).
    static let pendingRequestLimit = 1_024
    /// Reply bytes one pending request holds at most; further pages are dropped (`reply_too_large`).
    static let heldBytesLimit = 4 * 1_024 * 1_024
    /// What a page or a responder costs against ``heldBytesLimit`` beyond its body bytes.
    static let heldEntryCost = 64
    /// Watchers at once; more `watch` requests are refused (`watchers_full`).
    static let watcherLimit = 64
    static let watchLifetime: UInt64 = .millis(10_000)
    static let requestRetries = 2
    /// A command with effects runs only within this many milliseconds of its `issued_ms`
    /// (keyed clusters, Protocol.md §7.3).
    static let requestWindowMillis: UInt64 = 30_000
    /// How long a request without effects is remembered (long enough for the requester's retries).
    static let repeatMemory: UInt64 = .millis(10_000)
    /// How long a command with effects is remembered: it passes the window check at most
    /// `2 × requestWindowMillis` of this agent's time apart, so no repeat can run it again.
    static let effectsMemory: UInt64 = .millis(2 * requestWindowMillis)

    /// Commands that change something: they run at most once ever, not only once per memory.
    static func hasEffects(_ command: String) -> Bool {
        switch command {
        case "revoke", "shutdown", "elect", "watch": true
        default: false
        }
    }

    /// `base + delta`, or the far future instead of a wrap.
    static func later(_ base: UInt64, _ delta: UInt64) -> UInt64 {
        delta > UInt64.max - base ? UInt64.max : base + delta
    }

    // MARK: Requesting

    /// Sends a control request to the group (or by unicast to `to`) and collects the replies as
    /// `.reply` events, ending with one `.requestFinished`. The request carries `now.wallMillis`
    /// as its `issued_ms`. With ``pendingRequestLimit`` requests already open, the oldest
    /// finishes first (reason `deadline`).
    public mutating func request(
        _ command: String, args: [String] = [], target: String = "", to: Endpoint? = nil,
        options: RequestOptions = RequestOptions(), now: Now
    ) -> (UInt32, [Action]) {
        var actions: [Action] = []
        if requests.count >= Self.pendingRequestLimit, let oldest = requests.min(by: { $0.value.startedAt < $1.value.startedAt }) {
            counters.drop("requests_full")
            finishRequest(oldest.key, .deadline, into: &actions)
        }
        let id = newRequestID()
        let request = ControlRequest(requestID: id, issuedMillis: now.wallMillis, command: command, target: target, args: args)
        var pending = PendingRequest(request: request, options: options, startedAt: now.nanos)
        pending.useMemberCount = target.isEmpty && to == nil
        // A member knows how many others there are; it does not answer its own request.
        pending.expected = options.expected ?? (started != nil && pending.useMemberCount ? liveMembers : nil)
        requests[id] = pending
        send(.controlRequest(request), to: to.map { [.peer($0)] } ?? beatDestinations(), into: &actions)
        return (id, actions)
    }

    /// Revokes `ids` here and on every live member; the members' acknowledgements arrive as
    /// `.reply` events and the request ends when all have answered.
    public mutating func revoke(_ ids: [String], options: RequestOptions = RequestOptions(), now: Now) -> (UInt32, [Action]) {
        var local: [Action] = []
        _ = storeRevoked(ids, by: config.name, now: now, into: &local)
        var options = options
        if options.expected == nil { options.expected = liveMembers }
        var (id, actions) = request("revoke", args: ids, options: options, now: now)
        actions.insert(contentsOf: local, at: 0)
        if options.expected == 0 { finishRequest(id, .allReplied, into: &actions) }
        publish(&actions, now: now)
        return (id, actions)
    }

    /// Splits `args` into groups, in order, each small enough for one CONTROL_REQUEST from this
    /// peer: at most 64 arguments and one datagram (Protocol.md §3.5). A request that does not
    /// fit is not sent at all (it is counted as an `encode_oversized` drop), so callers with
    /// many arguments — a long list of ids to revoke — send one request per group.
    public func requestBatches(_ args: [String], command: String, target: String = "") -> [[String]] {
        // request_id, issued_ms, command and target with their length bytes, arg_count.
        let budget = Limits.maxDatagram - overhead - (4 + 8 + 3 + command.utf8.count + target.utf8.count)
        var batches: [[String]] = []
        var current: [String] = []
        var used = 0
        for arg in args {
            let size = 2 + arg.utf8.count
            if !current.isEmpty, current.count == Limits.maxArgs || used + size > budget {
                batches.append(current)
                current = []
                used = 0
            }
            current.append(arg)
            used += size
        }
        if !current.isEmpty { batches.append(current) }
        return batches
    }

    /// Sends each cluster event emitted in `actions[start...]` to the registered watchers. Every
    /// input publishes once, only the actions it appended itself: scanning further back would
    /// send an earlier datagram's events again (issue 14 item 7).
    mutating func publish(_ actions: inout [Action], since start: Int = 0, now: Now) {
        guard !watchers.isEmpty, start >= 0, start < actions.count else { return }
        let events: [PeerEvent] = actions[start...].compactMap { if case .emit(let event) = $0 { event } else { nil } }
        for event in events { notifyWatchers(event, now: now, into: &actions) }
    }

    /// Stops collecting a request early (the caller lost interest).
    public mutating func cancelRequest(_ id: UInt32) {
        requests[id] = nil
    }

    mutating func onControlReply(_ reply: ControlReply, header: Header, replyTo: Endpoint, now: Now, into actions: inout [Action]) {
        guard var pending = requests[reply.requestID], !pending.done.contains(header.sender) else { return }
        var part = pending.partial[header.sender] ?? PartialReply(name: header.name, status: reply.status, pageCount: reply.pageCount)
        // Pages of one reply agree on their count; a page beyond it would complete a wrong body.
        if reply.pageCount != part.pageCount {
            guard pending.options.stream else {
                counters.drop("reply_page_mismatch")
                return
            }
            // A stream's next event while the previous one still lacks a page: that one is lost.
            pending.held -= part.held
            part = PartialReply(name: header.name, status: reply.status, pageCount: reply.pageCount)
        }
        let newResponder = pending.responders[header.sender] == nil
        let cost = (newResponder ? Self.heldEntryCost : 0) + (part.pages[reply.page] == nil ? reply.body.count + Self.heldEntryCost : 0)
        guard cost <= Self.heldBytesLimit - pending.held else {
            counters.drop("reply_too_large")
            return
        }
        pending.held += cost
        pending.lastReplyAt = now.nanos
        pending.responders[header.sender] = replyTo
        if pending.options.expected == nil, pending.useMemberCount {
            // member_count includes the responder and, for a member, this peer (which never replies).
            let others = Int(clamping: reply.memberCount) - (started != nil ? 1 : 0)
            pending.expected = max(pending.expected ?? 0, others)
        }
        if part.pages[reply.page] == nil {
            part.held += reply.body.count + Self.heldEntryCost
            part.pages[reply.page] = reply.body
        }
        if part.pages.count >= Int(clamping: part.pageCount) {
            pending.partial[header.sender] = nil
            pending.held -= part.held
            if !pending.options.stream { pending.done.insert(header.sender) }
            var body: [UInt8] = []
            for index in 0..<part.pageCount { body.append(contentsOf: part.pages[index] ?? []) }
            let text = String(decoding: body, as: UTF8.self)
            actions.append(.emit(.reply(requestID: reply.requestID, from: header.name, id: header.sender, status: part.status, body: text)))
        } else {
            pending.partial[header.sender] = part
        }
        requests[reply.requestID] = pending
        if pending.options.stream { return }
        if let limit = pending.options.limit, pending.done.count >= limit {
            finishRequest(reply.requestID, .limit, into: &actions)
        } else if let expected = pending.expected, expected > 0, pending.done.count >= expected {
            finishRequest(reply.requestID, .allReplied, into: &actions)
        }
    }

    private mutating func finishRequest(_ id: UInt32, _ reason: RequestEnd, into actions: inout [Action]) {
        guard let pending = requests.removeValue(forKey: id) else { return }
        actions.append(.emit(.requestFinished(requestID: id, reason: reason, replies: pending.done.count, expected: pending.expected)))
    }

    mutating func tickRequests(now: Now, into actions: inout [Action]) {
        for (id, pending) in requests where now.nanos >= pending.nextWake {
            let hard = now.nanos >= Self.later(pending.startedAt, pending.options.deadline)
            if !hard, retry(id, now: now, into: &actions) { continue }
            finishRequest(id, hard ? .deadline : .idle, into: &actions)
        }
        recentRequests.prune(now: now.nanos)
        pendingElectReplies.prune(now: now.nanos)
        // At most `watcherLimit` entries: a pass per tick is cheap.
        if !watchers.isEmpty { watchers = watchers.filter { $0.value.expires > now.nanos } }
    }

    /// At an idle timeout, asks again (same request id, by unicast) the responders whose replies
    /// miss pages and, when this peer has a view and the request went to everyone, the live
    /// members that have not answered; at most twice (Protocol.md §6.5). False: nobody to ask.
    private mutating func retry(_ id: UInt32, now: Now, into actions: inout [Action]) -> Bool {
        guard var pending = requests[id], !pending.options.stream, pending.retries < Self.requestRetries else { return false }
        var targets = pending.partial.keys.compactMap { pending.responders[$0] }
        if started != nil, pending.useMemberCount, let expected = pending.expected, pending.done.count < expected {
            let silent = members.values.filter { $0.isLive && !pending.done.contains($0.id) && pending.partial[$0.id] == nil }
            targets += silent.map(\.endpoint)
        }
        guard !targets.isEmpty else { return false }
        pending.retries += 1
        pending.lastReplyAt = now.nanos
        requests[id] = pending
        send(.controlRequest(pending.request), to: targets.map { .peer($0) }, into: &actions)
        return true
    }

    // MARK: Answering

    mutating func onControlRequest(_ request: ControlRequest, header: Header, replyTo: Endpoint, now: Now, into actions: inout [Action]) {
        guard Glob.matchesTarget(request.target, config.name) else { return }
        let key = RequestKey(sender: header.sender, requestID: request.requestID)
        recentRequests.prune(now: now.nanos)
        // The same request may come again (group and unicast, a retry for a lost reply, or a
        // replay): run it once, and answer a repeat from the first run's reply.
        if let answered = recentRequests[key] {
            if let body = answered.body { sendReply(requestID: request.requestID, status: answered.status, body: body, to: replyTo, into: &actions) }
            return
        }
        let effects = Self.hasEffects(request.command)
        if effects, let reason = staleness(of: request, now: now) {
            counters.drop("stale_request")
            sendReply(requestID: request.requestID, status: .refused, body: Self.error(reason), to: replyTo, into: &actions)
            return
        }
        if recentRequests.hasRoom(effects: effects) {
            recentRequests.record(key, expires: Self.later(now.nanos, effects ? Self.effectsMemory : Self.repeatMemory))
        } else if effects {
            // Forgetting an entry to make room could let its request run a second time.
            counters.drop("run_once_full")
            let message = "too many recent requests to remember one more; try again in a minute"
            sendReply(requestID: request.requestID, status: .refused, body: Self.error(message), to: replyTo, into: &actions)
            return
        }
        // (A request without effects and no room runs unremembered: a repeat runs it again.)
        let (status, body) = execute(request, requester: header.name, sender: header.sender, replyTo: replyTo, now: now, into: &actions)
        guard let body else { return }
        recentRequests.keep(key, status: status, body: body)
        sendReply(requestID: request.requestID, status: status, body: body, to: replyTo, into: &actions)
    }

    /// Why a command with effects must not run, or nil (Protocol.md §7.3): in a keyed cluster a
    /// request runs only within the request window around this agent's clock and not when
    /// issued before this agent started, so a captured request cannot be replayed into a
    /// restarted agent or after the sequence windows were cleared. Without a key anyone may send
    /// any command anyway (§7.4): `issued_ms` is not checked.
    func staleness(of request: ControlRequest, now: Now) -> String? {
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
    mutating func sendReply(requestID: UInt32, status: ControlStatus, body: String, to endpoint: Endpoint, into actions: inout [Action]) {
        let bytes = Array(body.utf8)
        let chunk = Limits.maxDatagram - overhead - 13
        let count = max(1, (bytes.count + chunk - 1) / chunk)
        guard let pageCount = UInt16(exactly: count) else {
            counters.drop("reply_oversized")
            return
        }
        for page in 0..<pageCount {
            let start = Int(page) * chunk
            let slice = Array(bytes[min(start, bytes.count)..<min(start + chunk, bytes.count)])
            let reply = ControlReply(requestID: requestID, status: status, memberCount: UInt16(clamping: liveCount),
                page: page, pageCount: pageCount, body: slice)
            send(.controlReply(reply), to: .peer(endpoint), into: &actions)
        }
    }

    /// Sends `event` to every registered watcher.
    mutating func notifyWatchers(_ event: PeerEvent, now: Now, into actions: inout [Action]) {
        guard !watchers.isEmpty, let json = Self.eventJSON(event, source: config.name, wallMillis: now.wallMillis) else { return }
        let body = json.serialized()
        for (endpoint, watcher) in watchers {
            sendReply(requestID: watcher.requestID, status: .ok, body: body, to: endpoint, into: &actions)
        }
    }

    /// Registers (or renews) the watcher at `endpoint`; false when ``watcherLimit`` others watch.
    mutating func addWatcher(_ endpoint: Endpoint, requestID: UInt32, now: Now) -> Bool {
        guard watchers[endpoint] != nil || watchers.count < Self.watcherLimit else { return false }
        watchers[endpoint] = Watcher(requestID: requestID, expires: Self.later(now.nanos, Self.watchLifetime))
        return true
    }

    /// Events as `watch` shows them; nil for the ones that are not cluster events.
    public static func eventJSON(_ event: PeerEvent, source: String, wallMillis: UInt64) -> JSON? {
        var fields: [(String, JSON)] = [("time_ms", .int(wallMillis)), ("source", .string(source)), ("event", .string(event.kind))]
        switch event {
        case .joined(let name, let id, let endpoint):
            fields += [("name", .string(name)), ("id", .string(id.description)), ("address", .string(endpoint.description))]
        case .statusChanged(let name, let id, let from, _):
            fields += [("name", .string(name)), ("id", .string(id.description)), ("from", .string(from.name))]
        case .refuted(let incarnation): fields += [("incarnation", .int(incarnation))]
        case .replaced(let name, let old, let new):
            fields += [("name", .string(name)), ("old", .string(old.description)), ("new", .string(new.description))]
        case .synced(let nodes, let clock, let received, let complete):
            fields += [("nodes", .int(nodes)), ("clock", .int(clock)), ("received", .int(received)), ("complete", .bool(complete))]
        case .alone: break
        case .revoked(let ids, let by): fields += [("ids", .array(ids.map { .string($0) })), ("by", .string(by))]
        case .leaderChanged(let topic, let leader, _, let term):
            fields += [("topic", .string(topic)), ("leader", leader.map { .string($0) } ?? .null), ("term", .int(term))]
        case .noQuorum(let topic, let term, let have, let need):
            fields += [("topic", .string(topic)), ("term", .int(term)), ("have", .int(have)), ("need", .int(need))]
        case .duplicateName(let name, _): fields += [("name", .string(name))]
        case .stalled(let millis): fields += [("millis", .int(millis))]
        case .searching: break
        case .reaped, .reply, .requestFinished, .dropped: return nil
        }
        return .object(fields)
    }
}
