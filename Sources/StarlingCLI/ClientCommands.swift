import Starling
import StarlingCore
import StarlingPOSIX

/// The commands that talk to running agents.
struct Client {
    let args: Arguments
    let client: ControlClient
    let json: Bool
    let timeout: UInt64
    let target: String
    /// Where requests go by unicast instead of the group (clusters run with --no-multicast).
    let seed: Endpoint?

    init(_ args: Arguments) throws(CLIError) {
        self.args = args
        do {
            client = try ControlClient(interface: args.interface(), group: try args.group(), cluster: args.value("--cluster") ?? "starling", keys: try args.keys())
        } catch {
            throw CLIError(error)
        }
        json = args.has("--json")
        let seconds: Double
        do { seconds = try args.seconds("--timeout", 0.01...3600) ?? 2 } catch { throw .usage(error) }
        timeout = UInt64(seconds * 1_000_000_000)
        target = args.value("--to") ?? ""
        do { seed = try args.value("--seed").map { (text) throws(UsageError) in try args.endpoint(text, "--seed", defaultPort: nil) } } catch { throw .usage(error) }
    }

    /// Options: one reply when a single agent is named or `any` is enough, else the replies tell.
    func options(any: Bool = false) -> RequestOptions {
        var options = RequestOptions(idleTimeout: min(timeout, .millis(250)), deadline: timeout)
        if Glob.isLiteral(target) { options.expected = 1 } else if any && target.isEmpty { options.limit = 1 }
        return options
    }

    func send(_ command: String, _ arguments: [String] = [], any: Bool = false) -> RequestResult {
        client.request(command, args: arguments, target: target, to: seed, options: seed == nil ? options(any: any) : RequestOptions(expected: 1, idleTimeout: .millis(250), deadline: timeout))
    }

    /// 0 when every expected agent answered, 1 when none or only some did.
    func exitCode(_ result: RequestResult) -> Int32 {
        if result.replies.isEmpty {
            Output.error("no agent answered (group \(client.group), interface \(args.interface()))")
            return 1
        }
        if let expected = result.expected, result.replies.count < expected, result.reason != .limit {
            Output.error("only \(result.replies.count) of \(expected) agents answered")
            return 1
        }
        let failed = result.replies.filter { $0.status != .ok }
        for reply in failed { Output.error("\(reply.name): \(reply.json["error"]?.plain ?? reply.body)") }
        return failed.isEmpty ? 0 : 1
    }

    func reportDuplicates(_ replies: [Reply]) {
        var seen: [String: Int] = [:]
        for reply in replies { seen[reply.name, default: 0] += 1 }
        for (name, count) in seen where count > 1 { Output.error("warning: \(count) agents answer to the name \(name)") }
    }

    // MARK: Commands

    func ping() -> Int32 {
        let started = System.now().nanos
        var rows: [[String]] = []
        let result = client.request("ping", target: target, to: seed, options: seed == nil ? options() : RequestOptions(expected: 1, deadline: timeout)) { reply in
            rows.append([reply.name, reply.id.short, reply.json["clock"]?.plain ?? "-", Output.millis(System.now().nanos - started)])
            return true
        }
        reportDuplicates(result.replies)
        if json {
            Output.json(.array(result.replies.map { $0.json }))
        } else if !result.replies.isEmpty {
            Output.printTable(["NAME", "ID", "CLOCK", "REPLY"], rows)
        }
        return exitCode(result)
    }

    func members() -> Int32 {
        let result = send("members", any: true)
        guard let reply = result.replies.first else { return exitCode(result) }
        let rows = reply.json["members"]?.arrayValue ?? []
        if json {
            Output.json(.array(rows))
        } else {
            Output.line("view of \(reply.name):")
            Output.printTable(["NAME", "STATUS", "ADDRESS", "INCARNATION", "CLOCK", "HEARTBEAT AGE"], rows.map { row in
                [row["name"]?.plain ?? "", row["status"]?.plain ?? "", row["address"]?.plain ?? "", row["incarnation"]?.plain ?? "",
                 row["clock"]?.plain ?? "", (row["heartbeat_age_ms"]?.plain ?? "") + " ms"]
            })
        }
        return exitCode(result)
    }

    func stats() -> Int32 {
        let result = send("stats")
        reportDuplicates(result.replies)
        let documents = result.replies.map(\.json).sorted { ($0["name"]?.plain ?? "") < ($1["name"]?.plain ?? "") }
        if json {
            Output.json(documents.count == 1 ? documents[0] : .array(documents))
        } else {
            for document in documents {
                guard case .object(let pairs) = document else { continue }
                Output.line(document["name"]?.plain ?? "?")
                Output.printTable(["  FIELD", "VALUE"], pairs.map { ["  " + $0.0, $0.1.plain] })
                Output.line()
            }
        }
        return exitCode(result)
    }

    func revoke() -> Int32 {
        var ids = args.positional
        if let file = args.value("--file") {
            guard let text = Self.readIDs(file) else {
                Output.error("cannot read ids from \(file == "-" ? "standard input" : file)")
                return 2
            }
            // One id per line; blank lines and `#` comments are skipped.
            ids += text.split(whereSeparator: \.isNewline)
                .map { String($0.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed()) }
                .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        }
        guard !ids.isEmpty else {
            Output.error("no ids to revoke: give them as arguments or with --file FILE (- for standard input)")
            return 2
        }
        for id in ids where !Limits.revokedIDBytes.contains(id.utf8.count) {
            Output.error("revoked id '\(id)' must be 1 to 128 bytes")
            return 2
        }
        // Many ids go in several requests, one after another (each must fit one datagram).
        var stored: [String: Int] = [:]
        var totals: [String: String] = [:]
        var replies: [JSON] = []
        var code: Int32 = 0
        for batch in client.requestBatches(ids, command: "revoke", target: target) {
            let result = send("revoke", batch)
            code = max(code, exitCode(result))
            for reply in result.replies {
                replies.append(reply.json)
                stored[reply.name, default: 0] += Int(reply.json["stored"]?.numberValue ?? 0)
                totals[reply.name] = reply.json["count"]?.plain ?? "-"
            }
            if result.replies.isEmpty { break }
        }
        if json {
            Output.json(.array(replies))
        } else if !stored.isEmpty {
            Output.printTable(["NAME", "STORED", "REVOKED TOTAL"], stored.keys.sorted().map { [$0, String(stored[$0] ?? 0), totals[$0] ?? "-"] })
        }
        return code
    }

    /// The text of `path`, or of standard input for `-`.
    static func readIDs(_ path: String) -> String? {
        if path == "-" {
            var lines: [String] = []
            while let line = readLine() { lines.append(line) }
            return lines.joined(separator: "\n")
        }
        return (try? System.readFile(path)).map { String(decoding: $0, as: UTF8.self) }
    }

    func revoked() -> Int32 {
        let result = send("revoked", any: true)
        guard let reply = result.replies.first else { return exitCode(result) }
        let ids = reply.json["ids"]?.arrayValue ?? []
        if json {
            Output.json(.array(ids))
        } else {
            Output.line("\(reply.name) holds \(reply.json["count"]?.plain ?? "0") revoked ids")
            Output.printTable(["ID", "REVOKED AT (UTC)"], ids.map { item in
                [item["id"]?.plain ?? "", Logger.timestamp(UInt64(item["revoked_at_ms"]?.numberValue ?? 0) * 1000)]
            })
        }
        return exitCode(result)
    }

    func clock() -> Int32 {
        let result = send("clock")
        let rows = result.replies.map(\.json).sorted { ($0["name"]?.plain ?? "") < ($1["name"]?.plain ?? "") }
        if json {
            Output.json(.array(rows))
        } else if !rows.isEmpty {
            Output.printTable(["NAME", "CLOCK", "INCARNATION"], rows.map { [$0["name"]?.plain ?? "", $0["clock"]?.plain ?? "", $0["incarnation"]?.plain ?? ""] })
        }
        return exitCode(result)
    }

    func elect() -> Int32 {
        let topic = args.positional[0]
        guard Limits.topicBytes.contains(topic.utf8.count) else {
            Output.error("topic must be 1 to 64 bytes")
            return 2
        }
        let started = System.now().nanos
        var options = options()
        options.idleTimeout = min(timeout, .millis(1_000))
        let result = client.request("elect", args: [topic], target: target, options: options)
        let elapsed = System.now().nanos - started
        let views = Set(result.replies.map { "\($0.json["leader"]?.plain ?? "-")@\($0.json["term"]?.plain ?? "0")" })
        let first = result.replies.first?.json
        if json {
            Output.json(.object([("topic", .string(topic)), ("leader", first?["leader"] ?? .null), ("term", first?["term"] ?? .int(0)),
                ("agreed", .bool(views.count == 1)), ("agents", .int(result.replies.count))]))
        } else if let first {
            Output.line("topic \(topic): leader \(first["leader"]?.plain ?? "none"), term \(first["term"]?.plain ?? "0") — "
                + (views.count == 1 ? "agreed by \(result.replies.count) agents" : "VIEWS DIFFER: \(views.sorted().joined(separator: ", "))")
                + " in \(Output.millis(elapsed))")
        }
        if views.count > 1 { return 1 }
        return exitCode(result)
    }

    func leader() -> Int32 {
        let topic = args.positional[0]
        let result = send("leader", [topic], any: true)
        guard let reply = result.replies.first else { return exitCode(result) }
        let document = reply.json
        if json {
            Output.json(.object([("topic", .string(topic)), ("leader", document["leader"] ?? .null), ("term", document["term"] ?? .int(0))]))
        } else {
            Output.line("topic \(topic): leader \(document["leader"]?.plain ?? "none"), term \(document["term"]?.plain ?? "0") (view of \(reply.name))")
        }
        return exitCode(result)
    }

    func shutdown() -> Int32 {
        let name = args.positional[0]
        guard Glob.isLiteral(name) else {
            Output.error("shutdown takes one agent name, not a pattern")
            return 2
        }
        var options = options()
        options.expected = 1
        let result = client.request("shutdown", target: name, options: options)
        if let reply = result.replies.first, reply.status == .ok { Output.line("\(reply.name) is stopping") }
        return exitCode(result)
    }

    /// Streams events until interrupted (or for --timeout seconds when given).
    func watch() -> Int32 {
        let until = args.value("--timeout") == nil ? UInt64.max : System.now().nanos + timeout
        while System.now().nanos < until {
            var options = RequestOptions(deadline: min(.millis(5_000), until - System.now().nanos))
            options.stream = true
            _ = client.request("watch", target: target, options: options) { reply in
                let event = reply.json
                if event["event"]?.plain == "watching" { return true }
                if json {
                    Output.line(event.serialized())
                } else {
                    let time = Logger.timestamp(UInt64(event["time_ms"]?.numberValue ?? 0) * 1000)
                    guard case .object(let pairs) = event else { return true }
                    let rest = pairs.filter { !["time_ms", "source", "event"].contains($0.0) }.map { "\($0.0)=\($0.1.plain)" }
                    Output.line("\(time)  \(event["source"]?.plain ?? "?")  \(event["event"]?.plain ?? "?")  \(rest.joined(separator: " "))")
                }
                return true
            }
        }
        return 0
    }
}
