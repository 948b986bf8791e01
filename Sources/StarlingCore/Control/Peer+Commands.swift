/// The control commands every agent answers (Protocol.md §3.5.1). Bodies are JSON objects that
/// always carry `name`.
extension Peer {
    mutating func onControlRequest(_ request: ControlRequest, header: Header, replyTo: Endpoint, now: Now) {
        guard responder.admit(request, from: header.sender, replyTo: replyTo, now: now, started: started,
            liveCount: membership.liveCount, tags: outbox.tags, out: &outbox)
        else { return }
        let (status, body) = execute(request, requester: header.name, sender: header.sender, replyTo: replyTo, now: now)
        guard let body else { return }
        let paced = responder.answer(request, from: header.sender, status: status, body: body, replyTo: replyTo,
            liveCount: membership.liveCount, now: now, out: &outbox)
        answers.charge(paced, to: replyTo, now: now.nanos)
    }

    /// Runs one command. A nil body means the reply is sent later (an election in progress).
    mutating func execute(_ request: ControlRequest, requester: String, sender: NodeID, replyTo: Endpoint, now: Now) -> (ControlStatus, String?) {
        let name: (String, JSON) = ("name", .string(config.name))
        switch request.command {
        case "ping":
            return (.ok, JSON.object([name, ("id", .string(config.id.description)), ("clock", .int(clock.value))]).serialized())
        case "stats":
            return (.ok, stats(now: now).serialized())
        case "members":
            return (.ok, JSON.object([name, ("members", .array(memberRows(now: now)))]).serialized())
        case "revoke":
            if let durabilityError { return (.error, Responder.error("not stored: this agent cannot keep revoked ids (\(durabilityError))")) }
            guard !request.args.isEmpty, request.args.allSatisfy({ Limits.revokedIDBytes.contains($0.utf8.count) }) else {
                return (.error, Responder.error("revoke takes ids of 1 to 128 bytes"))
            }
            let stored = sync.storeRevoked(request.args, by: requester, now: now, out: &outbox)
            return (.ok, JSON.object([name, ("stored", .int(stored)), ("count", .int(sync.revoked.count))]).serialized())
        case "revoked":
            return revokedPage(request.args)
        case "clock":
            return (.ok, JSON.object([name, ("clock", .int(clock.value)), ("incarnation", .int(incarnation))]).serialized())
        case "elect":
            guard let topic = request.args.first, Limits.topicBytes.contains(topic.utf8.count) else {
                return (.error, Responder.error("elect takes a topic of 1 to 64 bytes"))
            }
            guard responder.awaitDecision(on: topic, sender: sender, replyTo: replyTo, requestID: request.requestID, now: now) else {
                outbox.drop("elect_waiters_full")
                return (.refused, Responder.error("too many elect requests are waiting for a decision; try again later"))
            }
            // A request to many agents (empty target or a pattern) starts on the electors only.
            answerElectRequests(leadership.electOnRequest(topic, staggered: !Glob.isLiteral(request.target), context: electionContext(now), out: &outbox))
            return (.ok, nil)
        case "leader":
            if let topic = request.args.first {
                return (.ok, leaderJSON(topic).serialized())
            }
            let topics = leadership.table.keys.sorted().map { leaderJSON($0.string) }
            return (.ok, JSON.object([name, ("leaders", .array(topics))]).serialized())
        case "shutdown", "reload":
            guard !config.keys.isEmpty else {
                return (.refused, Responder.error("\(request.command) is refused: the cluster runs without a key (see --key-file)"))
            }
            guard Glob.isLiteral(request.target) else {
                return (.refused, Responder.error("\(request.command) names exactly one agent"))
            }
            if request.command == "reload" {
                outbox.append(.reload(requestedBy: requester))
                return (.ok, JSON.object([name, ("reloading", .bool(true))]).serialized())
            }
            outbox.append(.shutdown(requestedBy: requester))
            return (.ok, JSON.object([name, ("stopping", .bool(true))]).serialized())
        case "event":
            return userEventCommand(request, now: now)
        case "keys":
            return (.ok, JSON.object([name, ("keys", .array(config.keys.map { .string($0.fingerprint) }))]).serialized())
        case "watch":
            guard responder.addWatcher(replyTo, requestID: request.requestID, now: now) else {
                outbox.drop("watchers_full")
                return (.refused, Responder.error("watch is refused: \(Responder.watcherLimit) watchers already (each lasts 10 s)"))
            }
            return (.ok, JSON.object([name, ("event", .string("watching"))]).serialized())
        default:
            guard responder.custom.handles(request.command) else {
                return (.unknownCommand, Responder.error("unknown command '\(request.command)'"))
            }
            let command = CommandRequest(requestID: request.requestID, requester: sender, requesterName: requester,
                command: request.command, args: request.args, target: request.target, replyTo: replyTo)
            guard responder.custom.begin(command, now: now.nanos) else {
                outbox.drop("commands_full")
                return (.refused, Responder.error("too many commands are running on this agent; try again later"))
            }
            outbox.append(.command(command))
            return (.ok, nil)
        }
    }

    /// The most ids one `revoked` reply lists, and the default limit.
    static let revokedPageLimit = 1_000

    /// `revoked [LIMIT [CURSOR]]`: the first LIMIT ids (1–1000, default 1000) strictly after
    /// CURSOR in UTF-8 byte order, with their revoke times. The page is cut earlier when the body
    /// would pass 64 KiB, so that every reply can be kept for retries (Protocol.md §3.5.1);
    /// `more` says whether ids follow the last one listed.
    mutating func revokedPage(_ args: [String]) -> (ControlStatus, String) {
        guard args.count <= 2 else { return (.error, Responder.error("revoked takes at most a limit and a cursor")) }
        var limit = Self.revokedPageLimit
        if let text = args.first {
            guard let value = Self.decimal(text, max: Self.revokedPageLimit), value >= 1 else {
                return (.error, Responder.error("revoked: the limit must be a decimal number from 1 to \(Self.revokedPageLimit)"))
            }
            limit = value
        }
        let cursor = args.count == 2 ? args[1] : ""
        // A row's JSON is longer than its entry on the wire, so one body's worth of wire bytes
        // holds every row that can fit the body.
        let (candidates, last) = sync.revoked.page(after: cursor, mask: .max, budget: RunOnceTable.bodyLimit)
        let name = ("name", JSON.string(config.name))
        let count = ("count", JSON.int(sync.revoked.count))
        // `false` is the longer of the two values of `more`.
        var used = JSON.object([name, count, ("ids", .array([])), ("more", .bool(false))]).serialized().utf8.count
        var rows: [JSON] = []
        for entry in candidates where rows.count < limit {
            let row = JSON.object([("id", .string(entry.id)), ("revoked_at_ms", .int(entry.revokedAtMillis))])
            let size = row.serialized().utf8.count + (rows.isEmpty ? 0 : 1)
            guard size <= RunOnceTable.bodyLimit - used else { break }
            used += size
            rows.append(row)
        }
        let more = rows.count < candidates.count || !last
        return (.ok, JSON.object([name, count, ("ids", .array(rows)), ("more", .bool(more))]).serialized())
    }

    /// The value of ASCII decimal digits when it is at most `max`; nil for anything else
    /// (empty, a sign, other characters, or larger).
    static func decimal(_ text: String, max: Int) -> Int? {
        guard !text.isEmpty else { return nil }
        var value = 0
        for byte in text.utf8 {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(truncatingIfNeeded: byte &- UInt8(ascii: "0"))
            guard value <= max else { return nil }
        }
        return value
    }

    static func error(_ message: String) -> String {
        JSON.object([("error", .string(message))]).serialized()
    }

    func leaderJSON(_ topic: String) -> JSON {
        let leader = leader(of: topic)
        return Responder.leaderJSON(name: config.name, topic: topic, leader: leader.name, term: leader.term)
    }

    /// This peer first, then its view, as `members` shows it.
    public func memberRows(now: Now) -> [JSON] {
        var rows: [JSON] = [.object([
            ("name", .string(config.name)), ("id", .string(config.id.description)), ("status", .string("alive")),
            ("address", .string(Endpoint(ip: config.advertisedAddress, port: config.replyPort).description)), ("incarnation", .int(incarnation)),
            ("clock", .int(clock.value)), ("last_heard_ms", .int(0)), ("self", .bool(true)),
        ] + Self.tagsField(tags))]
        // The published view (§6.1.8), by name as bytes, then id.
        let published = publishedMembers.sorted { a, b in bytesEqual(a.name, b.name) ? a.id < b.id : bytesPrecede(a.name, b.name) }
        for member in published {
            rows.append(.object([
                ("name", .string(member.name)), ("id", .string(member.id.description)), ("status", .string(member.status.name)),
                ("address", .string(member.endpoint.description)), ("incarnation", .int(member.incarnation)),
                ("clock", .int(member.clock)), ("last_heard_ms", .int((now.nanos &- member.lastHeard) / 1_000_000)),
                ("self", .bool(false)),
            ] + Self.tagsField(membership.tags(of: member.id)) + membership.pathFields(member.id)))
        }
        return rows
    }

    /// `tags` for a member that has any (§3.5.1).
    private static func tagsField(_ tags: MemberTags) -> [(String, JSON)] {
        tags.isEmpty ? [] : [("tags", tags.json)]
    }

    public func stats(now: Now) -> JSON {
        let counts = publishedByStatus
        let byStatus: [(String, JSON)] = MemberStatus.allCases.map { ($0.name, .int(counts[Int($0.rawValue)])) }
        let uptime = started.map { (now.nanos &- $0.nanos) / 1_000_000 } ?? 0
        var fields: [(String, JSON)] = [
            ("name", .string(config.name)), ("id", .string(config.id.description)), ("version", .string(config.version)),
            ("cluster", .string(config.cluster)), ("uptime_ms", .int(uptime)), ("clock", .int(clock.value)),
            ("incarnation", .int(incarnation)), ("tags", tags.json), ("members", .object(byStatus)),
            ("newcomers_held_back", .int(members.values.filter { !$0.isPublished && $0.isLive }.count)), ("revoked", .int(revoked.count)),
            ("leaders", .object(elections.keys.sorted().map { ($0.string, leader(of: $0.string).name.map { .string($0) } ?? .null) })),
            ("datagrams_in", .int(counters.datagramsIn)), ("datagrams_out", .int(counters.datagramsOut)),
            ("bytes_in", .int(counters.bytesIn)), ("bytes_out", .int(counters.bytesOut)),
            ("drops", .object(counters.drops.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) })),
            ("authenticated", .bool(!config.keys.isEmpty)), ("synced", .bool(isSynced)),
            ("control", .object([
                ("run_once", .int(responder.recent.count)), ("kept_reply_bytes", .int(responder.recent.keptBytes)),
                ("watchers", .int(responder.watchers.count)), ("elect_waiters", .int(responder.electWaiters.count)),
                ("pending_requests", .int(requester.requests.count)),
            ])),
        ]
        if let median = membership.medianRoundTrip() {
            fields.append(("round_trip", .object([("median_rtt_ms", .number(median.millis)), ("members_measured", .int(median.members))])))
        }
        fields.append(contentsOf: hostInfo)
        return .object(fields)
    }
}
