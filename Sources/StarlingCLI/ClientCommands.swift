@_spi(Testing) import Starling
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
        // Every flag is checked before the socket opens: a mistake is exit 2, whatever the network.
        do {
            let group = try args.group()
            let cluster = try args.cluster()
            target = try args.target()
            let seconds = try args.seconds("--timeout", 0.01...3600) ?? 2
            timeout = UInt64(seconds * 1_000_000_000)
            seed = try args.value("--seed").map { (text) throws(UsageError) in
                try args.clusterEndpoint(text, "--seed", group: group, defaultPort: nil)
            }
            let keys = try args.keys()
            client = try ControlClient(interface: args.interface(), group: group, cluster: cluster, keys: keys)
        } catch {
            throw CLIError(error)
        }
        json = args.has("--json")
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

    /// 0 when every expected agent answered in full, 1 when none, only some, or only part of a
    /// reply did. "No agent answered" is said only when nothing at all came.
    func exitCode(_ result: RequestResult) -> Int32 {
        for line in Display.incomplete(result.incomplete) { Output.error(line) }
        if result.replies.isEmpty {
            if result.incomplete.isEmpty { Output.error("no agent answered (group \(client.group), interface \(Escape.display(args.interface())))") }
            return 1
        }
        if let expected = result.expected, result.replies.count < expected, result.reason != .limit {
            Output.error("only \(result.replies.count) of \(expected) agents answered")
            return 1
        }
        let failed = result.replies.filter { $0.status != .ok }
        for reply in failed { Output.error("\(Escape.display(reply.name)): \(Escape.display(reply.json["error"]?.plain ?? reply.body))") }
        return failed.isEmpty && result.incomplete.isEmpty ? 0 : 1
    }

    func reportDuplicates(_ replies: [Reply]) {
        var seen: [String: Int] = [:]
        for reply in replies { seen[reply.name, default: 0] += 1 }
        for (name, count) in seen where count > 1 { Output.error("warning: \(count) agents answer to the name \(Escape.display(name))") }
    }

    // MARK: Commands

    func ping() -> Int32 {
        let started = System.now().nanos
        var rows: [[String]] = []
        let result = client.request("ping", target: target, to: seed, options: seed == nil ? options() : RequestOptions(expected: 1, deadline: timeout)) { reply in
            rows.append(Display.pingRow(reply, elapsedNanos: System.now().nanos &- started))
            return true
        }
        reportDuplicates(result.replies)
        if json {
            Output.json(.array(result.replies.map { $0.json }))
        } else if !result.replies.isEmpty {
            Output.printTable(Display.pingHeader, rows)
        }
        return exitCode(result)
    }

    func members() -> Int32 {
        let result = send("members", any: true)
        guard let reply = result.replies.first else { return exitCode(result) }
        if json {
            Output.json(.array(reply.json["members"]?.arrayValue ?? []))
        } else {
            Output.line("view of \(Escape.display(reply.name)):")
            Output.printTable(Display.membersHeader, Display.memberRows(reply.json))
        }
        return exitCode(result)
    }

    func stats() -> Int32 {
        let result = send("stats")
        reportDuplicates(result.replies)
        let documents = result.replies.map(\.json).sorted { ($0["name"]?.plain ?? "").utf8.lexicographicallyPrecedes(($1["name"]?.plain ?? "").utf8) }
        if json {
            Output.json(documents.count == 1 ? documents[0] : .array(documents))
        } else {
            for document in documents {
                Output.line(Display.stats(document))
                Output.line()
            }
        }
        return exitCode(result)
    }

    func revoke() throws(CLIError) -> Int32 {
        var ids = args.positional
        if let file = args.value("--file") {
            guard let text = Self.readIDs(file) else {
                throw .usage(UsageError("cannot read ids from \(file == "-" ? "standard input" : Escape.display(file))"))
            }
            // One id per line; blank lines and `#` comments are skipped.
            ids += text.split(whereSeparator: \.isNewline)
                .map { String($0.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed()) }
                .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        }
        guard !ids.isEmpty else {
            throw .usage(UsageError("no ids to revoke: give them as arguments or with --file FILE (- for standard input)"))
        }
        for id in ids where !Limits.revokedIDBytes.contains(id.utf8.count) {
            throw .usage(UsageError("revoked id '\(Escape.display(id))' must be 1 to 128 bytes"))
        }
        // Many ids go in several requests, one after another (each must fit one datagram).
        var stored: [String: UInt64?] = [:]
        var totals: [String: String] = [:]
        var replies: [JSON] = []
        var code: Int32 = 0
        // Who should acknowledge, from one agent's view: the silent ones are asked again by
        // unicast within milliseconds (Protocol.md §6.5) instead of waiting for anti-entropy.
        var revokeOptions = options()
        if seed == nil, revokeOptions.expected == nil { revokeOptions.responders = client.liveResponders(target: target, options: options()) }
        for batch in client.requestBatches(ids, command: "revoke", target: target) {
            let result = seed == nil ? client.request("revoke", args: batch, target: target, options: revokeOptions) : send("revoke", batch)
            code = max(code, exitCode(result))
            for reply in result.replies {
                replies.append(reply.json)
                stored[reply.name] = Display.addStored(stored[reply.name] ?? 0, reply.json)
                totals[reply.name] = Display.count(reply.json["count"])
            }
            if result.replies.isEmpty { break }
        }
        if json {
            Output.json(.array(replies))
        } else if !stored.isEmpty {
            let names = stored.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            Output.printTable(["NAME", "STORED", "REVOKED TOTAL"], names.map { name in
                [name, (stored[name] ?? nil).map { String($0) } ?? Display.unknown, totals[name] ?? "-"]
            })
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
        guard !path.isEmpty else { return nil }
        return (try? System.readFile(path)).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Lists one agent's revoked ids page by page (issue 14 item 26): the first responder (or
    /// the agent named with --to) is asked again by unicast, after the last id received, until
    /// it says there are no more or --limit is reached. Pages print as they come.
    func revoked() throws(CLIError) -> Int32 {
        let cap: Int?
        do { cap = try args.number("--limit", 1...100_000_000) } catch { throw .usage(error) }
        var pager = RevokedPager(cap: cap)
        var result = send("revoked", pager.nextArguments, any: true)
        guard let first = result.replies.first else { return exitCode(result) }
        // Later pages: the same agent, by unicast (a seed stays the destination when given).
        let agent = first.name
        let endpoint = seed ?? client.responders[first.id]
        let pageTarget = Glob.isLiteral(agent) ? agent : ""
        var reply = first
        var started = false
        var printed = 0
        var code: Int32 = 0
        while true {
            guard reply.status == .ok else { code = exitCode(result); break }
            let body = reply.json
            let page = pager.take(body)
            if page.step != .askAll && !started {
                started = true
                if json { Output.raw("[") } else {
                    Output.line("\(Escape.display(agent)) holds \(Display.count(body["count"])) revoked ids")
                    Output.line(Display.revokedHeader)
                }
            }
            if json {
                let text = page.items.map { "\n  " + $0.serialized() }.joined(separator: ",")
                Output.raw((printed > 0 && !page.items.isEmpty ? "," : "") + text)
            } else if !page.items.isEmpty {
                Output.line(page.items.map(Display.revokedLine).joined(separator: "\n"))
            }
            printed += page.items.count
            if let problem = page.problem {
                Output.error("\(Escape.display(agent)): \(problem); stopped after \(printed) ids")
                code = 1
            }
            if page.step == .finished { break }
            let options = RequestOptions(expected: 1, idleTimeout: min(timeout, .millis(250)), deadline: timeout)
            result = client.request("revoked", args: pager.nextArguments, target: pageTarget, to: endpoint, options: options)
            guard let next = result.replies.first(where: { $0.id == first.id }) else {
                code = exitCode(result)
                Output.error("\(Escape.display(agent)) did not send the page after '\(Escape.display(pager.cursor ?? ""))'; stopped after \(printed) ids")
                break
            }
            reply = next
        }
        if json { Output.line(started ? (printed > 0 ? "\n]" : "]") : "[]") }
        return code
    }

    func clock() -> Int32 {
        let result = send("clock")
        let rows = result.replies.map(\.json).sorted { ($0["name"]?.plain ?? "").utf8.lexicographicallyPrecedes(($1["name"]?.plain ?? "").utf8) }
        if json {
            Output.json(.array(rows))
        } else if !rows.isEmpty {
            Output.printTable(Display.clockHeader, rows.map(Display.clockRow))
        }
        return exitCode(result)
    }

    static func topic(_ args: Arguments) throws(CLIError) -> String {
        let topic = args.positional[0]
        do { try Arguments.checkText(topic, "the topic", Limits.topicBytes) } catch { throw .usage(error) }
        return topic
    }

    func elect() throws(CLIError) -> Int32 {
        let topic = try Self.topic(args)
        let started = System.now().nanos
        var options = options()
        options.idleTimeout = min(timeout, .millis(1_000))
        // Who should answer, from one agent's view: the silent ones are asked again (§6.5).
        if seed == nil, options.expected == nil { options.responders = client.liveResponders(target: target, options: self.options()) }
        let result = client.request("elect", args: [topic], target: target, to: seed, options: options)
        let elapsed = System.now().nanos &- started
        let views = Set(result.replies.map { Display.leader($0.json) })
        let first = result.replies.first?.json
        if json {
            Output.json(.object([("topic", .string(topic)), ("leader", first?["leader"] ?? .null), ("term", first?["term"] ?? .int(0)),
                ("agreed", .bool(views.count == 1)), ("agents", .int(result.replies.count))]))
        } else if let first {
            Output.line("topic \(topic): \(Display.leader(first)) — "
                + (views.count == 1 ? "agreed by \(result.replies.count) agents" : "VIEWS DIFFER: \(views.sorted().joined(separator: "; "))")
                + " in \(Output.millis(elapsed))")
        }
        if views.count > 1 { return 1 }
        return exitCode(result)
    }

    func leader() throws(CLIError) -> Int32 {
        let topic = try Self.topic(args)
        let result = send("leader", [topic], any: true)
        guard let reply = result.replies.first else { return exitCode(result) }
        let document = reply.json
        if json {
            Output.json(.object([("topic", .string(topic)), ("leader", document["leader"] ?? .null), ("term", document["term"] ?? .int(0))]))
        } else {
            Output.line("topic \(topic): \(Display.leader(document)) (view of \(Escape.display(reply.name)))")
        }
        return exitCode(result)
    }

    /// `shutdown NAME` and `reload NAME`: commands with effects on exactly one agent.
    func one(_ command: String, done: String) throws(CLIError) -> Int32 {
        let name = args.positional[0]
        do { try Arguments.checkText(name, "the agent name", Limits.nameBytes) } catch { throw .usage(error) }
        guard Glob.isLiteral(name) else { throw .usage(UsageError("\(command) takes one agent name, not a pattern")) }
        var options = options()
        options.expected = 1
        let result = client.request(command, target: name, options: options)
        if let reply = result.replies.first, reply.status == .ok { Output.line("\(Escape.display(reply.name)) \(done)") }
        for reply in result.replies where reply.status != .ok {
            Output.error("\(Escape.display(reply.name)): \(Escape.display(reply.json["error"]?.plain ?? reply.body))")
        }
        return exitCode(result)
    }

    /// `keys list`: the fingerprints of the keys each agent holds (never the keys).
    func keys() throws(CLIError) -> Int32 {
        guard args.positional == ["list"] else { throw .usage(UsageError("keys takes 'list'")) }
        let result = send("keys")
        // Names from the authenticated header, not from the body.
        let replies = result.replies.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        for reply in replies where reply.status != .ok {
            Output.error("\(Escape.display(reply.name)): \(Escape.display(reply.json["error"]?.plain ?? reply.body))")
        }
        let listed = replies.filter { $0.status == .ok }
        if json {
            Output.json(.array(listed.map { reply in
                .object([("name", .string(reply.name)), ("keys", .array((reply.json["keys"]?.arrayValue ?? []).filter { $0.stringValue != nil }))])
            }))
        } else if !listed.isEmpty {
            Output.printTable(["NAME", "KEYS (fingerprints; the first signs)"], listed.map { reply in
                [Escape.display(reply.name), Escape.display((reply.json["keys"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: " "))]
            })
        }
        return exitCode(result)
    }

    /// Streams events until interrupted (or for --timeout seconds when given).
    func watch() -> Int32 {
        let until = args.value("--timeout") == nil ? UInt64.max : System.now().nanos &+ timeout
        while true {
            let now = System.now().nanos
            guard now < until else { break }
            var options = RequestOptions(deadline: min(.millis(5_000), until - now))
            options.stream = true
            _ = client.request("watch", target: target, options: options) { reply in
                if json {
                    if reply.json["event"]?.stringValue != "watching" { Output.line(reply.json.serialized()) }
                } else if let line = Display.watchLine(reply.json) {
                    Output.line(line)
                }
                return true
            }
        }
        return 0
    }
}
