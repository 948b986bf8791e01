/// Control plane (Protocol.md §3.5, §6.5): answering requests, collecting replies, watchers.
struct RequestKey: Hashable, Sendable {
    var sender: NodeID
    var requestID: UInt32
}

/// A request this peer has run: kept for 10 s so that a retry is answered again from the
/// first run's reply instead of running the command twice (Protocol.md §3.5.1, §6.5).
struct AnsweredRequest: Sendable {
    var expires: UInt64
    var status: ControlStatus = .ok
    /// Nil while the answer is deferred (`elect`) or when it was too large to keep.
    var body: String?
}

/// A watcher registered by `watch`: events go to it as CONTROL_REPLY pages until it expires.
struct Watcher: Sendable {
    var requestID: UInt32
    var expires: UInt64
}

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

struct PendingRequest: Sendable {
    var request: ControlRequest
    var options: RequestOptions
    var startedAt: UInt64
    var lastReplyAt: UInt64?
    var expected: Int?
    /// Replies' member counts tell how many to expect only when every agent is addressed.
    var useMemberCount = true
    var partial: [NodeID: (name: String, status: ControlStatus, pages: [UInt16: [UInt8]], count: UInt16)] = [:]
    var done: Set<NodeID> = []
    /// Where each responder's replies came from, to ask it again for missing pages.
    var responders: [NodeID: Endpoint] = [:]
    var retries = 0

    var nextWake: UInt64 {
        let hard = startedAt + options.deadline
        guard let lastReplyAt, !options.stream else { return hard }
        return min(hard, lastReplyAt + options.idleTimeout)
    }
}

extension Peer {
    // MARK: Requesting

    /// Sends a control request to the group (or by unicast to `to`) and collects the replies as
    /// `.reply` events, ending with one `.requestFinished`.
    public mutating func request(
        _ command: String, args: [String] = [], target: String = "", to: Endpoint? = nil,
        options: RequestOptions = RequestOptions(), now: Now
    ) -> (UInt32, [Action]) {
        var actions: [Action] = []
        let id = newRequestID()
        let request = ControlRequest(requestID: id, command: command, target: target, args: args)
        var pending = PendingRequest(request: request, options: options, startedAt: now.nanos)
        pending.useMemberCount = target.isEmpty && to == nil
        // A member knows how many others there are; it does not answer its own request.
        pending.expected = options.expected ?? (started != nil && pending.useMemberCount ? liveCount - 1 : nil)
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
        if options.expected == nil { options.expected = liveCount - 1 }
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
        let budget = Limits.maxDatagram - overhead - (4 + 1 + command.utf8.count + 1 + target.utf8.count + 1)
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

    /// Sends every emitted cluster event to the registered watchers.
    mutating func publish(_ actions: inout [Action], now: Now) {
        guard !watchers.isEmpty else { return }
        let events: [PeerEvent] = actions.compactMap { if case .emit(let event) = $0 { event } else { nil } }
        for event in events { notifyWatchers(event, now: now, into: &actions) }
    }

    /// Stops collecting a request early (the caller lost interest).
    public mutating func cancelRequest(_ id: UInt32) {
        requests[id] = nil
    }

    mutating func onControlReply(_ reply: ControlReply, header: Header, replyTo: Endpoint, now: Now, into actions: inout [Action]) {
        guard var pending = requests[reply.requestID], !pending.done.contains(header.sender) else { return }
        pending.lastReplyAt = now.nanos
        pending.responders[header.sender] = replyTo
        if pending.options.expected == nil, pending.useMemberCount {
            // member_count includes the responder and, for a member, this peer (which never replies).
            let others = Int(reply.memberCount) - (started != nil ? 1 : 0)
            pending.expected = max(pending.expected ?? 0, others)
        }
        var part = pending.partial[header.sender] ?? (header.name, reply.status, [:], reply.pageCount)
        part.pages[reply.page] = reply.body
        if part.pages.count >= Int(part.count) {
            pending.partial[header.sender] = nil
            if !pending.options.stream { pending.done.insert(header.sender) }
            var body: [UInt8] = []
            for index in 0..<part.count { body.append(contentsOf: part.pages[index] ?? []) }
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
            let hard = now.nanos >= pending.startedAt + pending.options.deadline
            if !hard, retry(id, now: now, into: &actions) { continue }
            finishRequest(id, hard ? .deadline : .idle, into: &actions)
        }
        recentRequests = recentRequests.filter { $0.value.expires > now.nanos }
        watchers = watchers.filter { $0.value.expires > now.nanos }
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

    static let requestRetries = 2
    /// Replies kept for retries: each at most this large, all together at most 16 times this.
    static let replyCacheBytes = 64 * 1_024

    // MARK: Answering

    mutating func onControlRequest(_ request: ControlRequest, header: Header, replyTo: Endpoint, now: Now, into actions: inout [Action]) {
        guard Glob.matchesTarget(request.target, config.name) else { return }
        let key = RequestKey(sender: header.sender, requestID: request.requestID)
        // The same request may come twice (group and unicast, or a retry for a lost reply): run
        // it once, and answer a retry from the first run's reply.
        if let answered = recentRequests[key] {
            if let body = answered.body { sendReply(requestID: request.requestID, status: answered.status, body: body, to: replyTo, into: &actions) }
            return
        }
        recentRequests[key] = AnsweredRequest(expires: now.nanos + .millis(10_000))
        let (status, body) = execute(request, requester: header.name, replyTo: replyTo, now: now, into: &actions)
        guard let body else { return }
        let cached = recentRequests.values.reduce(0) { $0 + ($1.body?.utf8.count ?? 0) }
        if body.utf8.count <= Self.replyCacheBytes, cached + body.utf8.count <= 16 * Self.replyCacheBytes {
            recentRequests[key]?.status = status
            recentRequests[key]?.body = body
        }
        sendReply(requestID: request.requestID, status: status, body: body, to: replyTo, into: &actions)
    }

    /// Pages a JSON body into CONTROL_REPLY datagrams.
    mutating func sendReply(requestID: UInt32, status: ControlStatus, body: String, to endpoint: Endpoint, into actions: inout [Action]) {
        let bytes = Array(body.utf8)
        let chunk = Limits.maxDatagram - overhead - 13
        let count = max(1, (bytes.count + chunk - 1) / chunk)
        guard count <= Int(UInt16.max) else { return }
        for page in 0..<count {
            let slice = Array(bytes[min(page * chunk, bytes.count)..<min((page + 1) * chunk, bytes.count)])
            let reply = ControlReply(requestID: requestID, status: status, memberCount: UInt16(clamping: liveCount),
                page: UInt16(page), pageCount: UInt16(count), body: slice)
            send(.controlReply(reply), to: .peer(endpoint), into: &actions)
        }
    }

    /// Sends `event` to every registered watcher.
    mutating func notifyWatchers(_ event: PeerEvent, now: Now, into actions: inout [Action]) {
        guard !watchers.isEmpty, let json = Self.eventJSON(event, source: config.name, wallMillis: now.wallMillis) else { return }
        for (endpoint, watcher) in watchers {
            sendReply(requestID: watcher.requestID, status: .ok, body: json.serialized(), to: endpoint, into: &actions)
        }
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
