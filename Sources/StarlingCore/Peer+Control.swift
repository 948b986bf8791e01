/// Control plane (Protocol.md §3.5, §6.5): answering requests, collecting replies, watchers.
struct RequestKey: Hashable, Sendable {
    var sender: NodeID
    var requestID: UInt32
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
    var options: RequestOptions
    var startedAt: UInt64
    var lastReplyAt: UInt64?
    var expected: Int?
    /// Replies' member counts tell how many to expect only when every agent is addressed.
    var useMemberCount = true
    var partial: [NodeID: (name: String, status: ControlStatus, pages: [UInt16: [UInt8]], count: UInt16)] = [:]
    var done: Set<NodeID> = []

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
        var pending = PendingRequest(options: options, startedAt: now.nanos)
        pending.expected = options.expected
        pending.useMemberCount = target.isEmpty && to == nil
        requests[id] = pending
        let request = ControlRequest(requestID: id, command: command, target: target, args: args)
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

    mutating func onControlReply(_ reply: ControlReply, header: Header, now: Now, into actions: inout [Action]) {
        guard var pending = requests[reply.requestID], !pending.done.contains(header.sender) else { return }
        pending.lastReplyAt = now.nanos
        if pending.options.expected == nil, pending.useMemberCount {
            pending.expected = max(pending.expected ?? 0, Int(reply.memberCount))
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
            finishRequest(id, hard ? .deadline : .idle, into: &actions)
        }
        recentRequests = recentRequests.filter { $0.value > now.nanos }
        watchers = watchers.filter { $0.value.expires > now.nanos }
    }

    // MARK: Answering

    mutating func onControlRequest(_ request: ControlRequest, header: Header, replyTo: Endpoint, now: Now, into actions: inout [Action]) {
        guard Glob.matchesTarget(request.target, config.name) else { return }
        let key = RequestKey(sender: header.sender, requestID: request.requestID)
        // The same request may come twice (group and unicast, or a retry): run it once.
        guard recentRequests[key] == nil else { return }
        recentRequests[key] = now.nanos + .millis(10_000)
        let (status, body) = execute(request, requester: header.name, replyTo: replyTo, now: now, into: &actions)
        guard let body else { return }
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
