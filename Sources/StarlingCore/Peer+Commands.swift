/// The control commands every agent answers (Protocol.md §3.5.1). Bodies are JSON objects that
/// always carry `name`.
extension Peer {
    /// Runs one command. A nil body means the reply is sent later (an election in progress).
    mutating func execute(_ request: ControlRequest, requester: String, replyTo: Endpoint, now: Now, into actions: inout [Action]) -> (ControlStatus, String?) {
        let name: (String, JSON) = ("name", .string(config.name))
        switch request.command {
        case "ping":
            return (.ok, JSON.object([name, ("id", .string(config.id.description)), ("clock", .int(clock.value))]).serialized())
        case "stats":
            return (.ok, stats(now: now).serialized())
        case "members":
            return (.ok, JSON.object([name, ("members", .array(memberRows(now: now)))]).serialized())
        case "revoke":
            guard !request.args.isEmpty, request.args.allSatisfy({ Limits.revokedIDBytes.contains($0.utf8.count) }) else {
                return (.error, Self.error("revoke takes ids of 1 to 128 bytes"))
            }
            let stored = storeRevoked(request.args, by: requester, now: now, into: &actions)
            return (.ok, JSON.object([name, ("stored", .int(stored)), ("count", .int(revoked.count))]).serialized())
        case "revoked":
            let limit = request.args.first.flatMap { Int($0) } ?? Int.max
            let rows = revoked.allEntries().prefix(limit).map { entry in
                JSON.object([("id", .string(entry.id)), ("revoked_at_ms", .int(entry.revokedAtMillis))])
            }
            return (.ok, JSON.object([name, ("count", .int(revoked.count)), ("ids", .array(Array(rows)))]).serialized())
        case "clock":
            return (.ok, JSON.object([name, ("clock", .int(clock.value)), ("incarnation", .int(incarnation))]).serialized())
        case "elect":
            guard let topic = request.args.first, Limits.topicBytes.contains(topic.utf8.count) else {
                return (.error, Self.error("elect takes a topic of 1 to 64 bytes"))
            }
            pendingElectReplies[topic, default: []].append((replyTo, request.requestID))
            electOnRequest(topic, now: now, into: &actions)
            return (.ok, nil)
        case "leader":
            if let topic = request.args.first {
                return (.ok, leaderJSON(topic).serialized())
            }
            let topics = elections.keys.sorted().map { leaderJSON($0.string) }
            return (.ok, JSON.object([name, ("leaders", .array(topics))]).serialized())
        case "shutdown":
            guard !config.keys.isEmpty else {
                return (.refused, Self.error("shutdown is refused: the cluster runs without a key (see --key-file)"))
            }
            guard Glob.isLiteral(request.target) else {
                return (.refused, Self.error("shutdown names exactly one agent"))
            }
            actions.append(.shutdown(requestedBy: requester))
            return (.ok, JSON.object([name, ("stopping", .bool(true))]).serialized())
        case "watch":
            watchers[replyTo] = Watcher(requestID: request.requestID, expires: now.nanos + .millis(10_000))
            return (.ok, JSON.object([name, ("event", .string("watching"))]).serialized())
        default:
            return (.unknownCommand, Self.error("unknown command '\(request.command)'"))
        }
    }

    static func error(_ message: String) -> String {
        JSON.object([("error", .string(message))]).serialized()
    }

    func leaderJSON(_ topic: String) -> JSON {
        let leader = leader(of: topic)
        return .object([("name", .string(config.name)), ("topic", .string(topic)),
            ("leader", leader.name.map { .string($0) } ?? .null), ("term", .int(leader.term))])
    }

    /// Replies to `elect` requests once this peer has decided.
    mutating func answerElectRequests(_ topic: String, into actions: inout [Action]) {
        guard let waiting = pendingElectReplies.removeValue(forKey: topic) else { return }
        let body = leaderJSON(topic).serialized()
        for (endpoint, requestID) in waiting {
            sendReply(requestID: requestID, status: .ok, body: body, to: endpoint, into: &actions)
        }
    }

    /// This peer first, then its view, as `members` shows it.
    public func memberRows(now: Now) -> [JSON] {
        var rows: [JSON] = [.object([
            ("name", .string(config.name)), ("id", .string(config.id.description)), ("status", .string("alive")),
            ("address", .string(Endpoint(address: config.advertisedAddress, port: config.replyPort).description)), ("incarnation", .int(incarnation)),
            ("clock", .int(clock.value)), ("heartbeat_age_ms", .int(0)), ("self", .bool(true)),
        ])]
        for member in members.values.sorted(by: { ($0.name, $0.id) < ($1.name, $1.id) }) {
            rows.append(.object([
                ("name", .string(member.name)), ("id", .string(member.id.description)), ("status", .string(member.status.name)),
                ("address", .string(member.endpoint.description)), ("incarnation", .int(member.incarnation)),
                ("clock", .int(member.clock)), ("heartbeat_age_ms", .int((now.nanos &- member.lastHeard) / 1_000_000)),
                ("self", .bool(false)),
            ]))
        }
        return rows
    }

    public func stats(now: Now) -> JSON {
        var byStatus: [(String, JSON)] = []
        for status in MemberStatus.allCases {
            let count = members.values.filter { $0.status == status }.count + (status == .alive ? 1 : 0)
            byStatus.append((status.name, .int(count)))
        }
        let uptime = started.map { (now.nanos &- $0.nanos) / 1_000_000 } ?? 0
        var fields: [(String, JSON)] = [
            ("name", .string(config.name)), ("id", .string(config.id.description)), ("version", .string(config.version)),
            ("cluster", .string(config.cluster)), ("uptime_ms", .int(uptime)), ("clock", .int(clock.value)),
            ("incarnation", .int(incarnation)), ("members", .object(byStatus)), ("revoked", .int(revoked.count)),
            ("leaders", .object(elections.keys.sorted().map { ($0.string, leader(of: $0.string).name.map { .string($0) } ?? .null) })),
            ("datagrams_in", .int(counters.datagramsIn)), ("datagrams_out", .int(counters.datagramsOut)),
            ("bytes_in", .int(counters.bytesIn)), ("bytes_out", .int(counters.bytesOut)),
            ("drops", .object(counters.drops.keys.sorted().map { ($0, .int(counters.drops[$0]!)) })),
            ("authenticated", .bool(!config.keys.isEmpty)), ("synced", .bool(isSynced)),
        ]
        fields.append(contentsOf: hostInfo)
        return .object(fields)
    }
}
