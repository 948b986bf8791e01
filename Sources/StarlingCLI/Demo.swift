@_spi(Testing) import Starling
import StarlingCore
import StarlingPOSIX
import StarlingTestSupport

/// `starling demo`: a guided tour on loopback. Every agent it starts is a child process on a
/// group port of its own, and every one is stopped before it returns.
enum Demo {
    static func run(_ args: Arguments) throws(CLIError) -> Int32 {
        let count: Int
        do { count = try args.number("--peers", 2...30) ?? 5 } catch { throw .usage(error) }
        // IPv6 (issue 19): multicast does not flow on lo, so the agents talk by unicast on ::1,
        // each given the others' ports as seeds, and the client asks each one in turn.
        let ipv6 = args.has("--ipv6")
        let randomPort = UInt16(20_000 + System.randomUInt64() % 39_000)
        let cluster = LoopbackCluster(binary: System.executablePath(), folder: "/tmp/starling-demo-\(System.processID)",
            group: ipv6 ? Configuration.defaultGroup6.with(port: randomPort) : LoopbackCluster.randomGroup())
        let (group, folder) = (cluster.group, cluster.folder)
        let ports = Dictionary(uniqueKeysWithValues: (1...count).map { ("demo-\($0)", randomPort &+ UInt16($0)) })
        let seeds = ipv6 ? ports.values.sorted().map { Endpoint(ip: IPAddress(high: 0, low: 1), port: $0) } : []
        let client: ControlClient
        do { client = try ControlClient(interface: "lo", group: group, seeds: seeds) } catch { throw .failed(error.description) }
        defer {
            let stopped = cluster.children.count
            cluster.stopAll()
            Output.line("stopped \(stopped) agents; logs in \(folder)")
        }
        func spawn(_ name: String) throws(CLIError) {
            var extra: [String] = []
            if ipv6, let port = ports[name] {
                extra = ["--no-multicast", "--port", String(port)] + seeds.filter { $0.port != port }.flatMap { ["--seed", $0.description] }
            }
            do { try cluster.start(name, extra) } catch { throw .failed("cannot start an agent: \(error)") }
        }
        Output.line(ipv6 ? "starling demo: \(count) agents on ::1 over IPv6 (unicast to seeds: IPv6 multicast does not flow on lo)\n"
            : "starling demo: \(count) agents on loopback, group \(group)\n")

        // 1. Discovery: the time of the last "joined" event any agent logged.
        let firstSpawn = System.wallMicros()
        for index in 1..<count { try spawn("demo-\(index)") }
        let lastSpawn = System.wallMicros()
        guard waitFor(deadlineMillis: 5_000, { alive(client) == Set((1..<count).map { "demo-\($0)" }) && allSee(client, count - 1) }) != nil else {
            throw .failed("agents did not discover each other within 5 s (see \(folder))")
        }
        let joins = (1..<count).flatMap { index in EventLog.read(cluster.eventLog("demo-\(index)")).filter { $0.kind == "joined" }.map(\.micros) }
        let lastJoin = joins.max() ?? lastSpawn
        Output.line("1. discovery: \(count - 1) agents started in \(Output.millis(nanos(from: firstSpawn, to: lastSpawn))); each listed all others alive \(Output.millis(nanos(from: lastSpawn, to: lastJoin))) after the last start")
        var started = System.now().nanos

        // 2. Revoke.
        let task = "task-\(System.randomUInt64() % 1_000_000)"
        started = System.now().nanos
        let revoke = client.request("revoke", args: [task], options: RequestOptions(idleTimeout: .millis(500), deadline: .millis(2_000)))
        Output.line("2. revoke \(task): stored by \(revoke.replies.count) agents, all acknowledged in \(Output.millis(System.now().nanos &- started))")

        // 3. Mingle: a late joiner pulls the revoked set and the clock. Times come from the
        // agents' own event logs, not from this loop's polling.
        let joiner = "demo-\(count)"
        let spawnedAt = System.wallMicros()
        try spawn(joiner)
        guard waitFor(deadlineMillis: 5_000, { holds(client, joiner, task) && allSee(client, count) }) != nil,
            let synced = EventLog.first(cluster.eventLog(joiner), { $0.kind == "synced" })
        else {
            throw .failed("\(joiner) did not sync within 5 s")
        }
        Output.line("3. mingle: \(joiner) joined and synced clock and revoked set (holds \(task)) \(Output.millis(nanos(from: spawnedAt, to: synced.micros))) after its process was started")

        // 4. Election.
        started = System.now().nanos
        let election = client.request("elect", args: ["demo"], options: RequestOptions(idleTimeout: .millis(1_000), deadline: .millis(3_000)))
        let leaders = Set(election.replies.compactMap { $0.json["leader"]?.stringValue })
        guard leaders.count == 1, let leader = leaders.first else { throw .failed("election did not agree: \(leaders)") }
        Output.line("4. election 'demo': \(election.replies.count) agents agree on \(leader) in \(Output.millis(System.now().nanos &- started)) (lowest Lamport stamp wins)")

        // 5. Failure detection and re-election.
        guard cluster.children[leader] != nil else { throw .failed("leader \(leader) is not ours") }
        let killedAt = System.wallMicros()
        cluster.kill(leader)
        guard waitFor(deadlineMillis: 5_000, { deadEverywhere(client, leader, survivors: count - 1) }) != nil else {
            throw .failed("the kill of \(leader) was not detected within 5 s")
        }
        let survivors = cluster.children.keys.sorted()
        let deaths = survivors.compactMap { name in
            EventLog.first(cluster.eventLog(name), since: killedAt) { $0.kind == "dead" && $0.event["name"]?.stringValue == leader }?.micros
        }
        Output.line("5. kill -9 \(leader): every survivor marked it dead within \(Output.millis(nanos(from: killedAt, to: deaths.max() ?? killedAt))) (first after \(Output.millis(nanos(from: killedAt, to: deaths.min() ?? killedAt))))")
        guard waitFor(deadlineMillis: 5_000, { agreedLeader(client, "demo", excluding: leader) != nil }) != nil else {
            throw .failed("no new leader agreed within 5 s")
        }
        let newLeader = agreedLeader(client, "demo", excluding: leader) ?? "?"
        let adopted = survivors.compactMap { name in
            EventLog.first(cluster.eventLog(name), since: killedAt) { $0.kind == "leader" && $0.event["leader"]?.stringValue == newLeader }?.micros
        }
        Output.line("   new leader \(newLeader) agreed by all survivors \(Output.millis(nanos(from: killedAt, to: adopted.max() ?? killedAt))) after the kill")
        Output.line("")
        return 0
    }

    /// Nanoseconds between two wall-clock readings in microseconds (event-log times are read
    /// from files): 0 when the clock stepped back, saturated when absurdly far apart.
    static func nanos(from start: UInt64, to end: UInt64) -> UInt64 {
        let (product, overflow) = (end > start ? end - start : 0).multipliedReportingOverflow(by: 1_000)
        return overflow ? UInt64.max : product
    }

    /// Polls `condition` every 10 ms; the monotonic time it first held, or nil at the deadline.
    static func waitFor(deadlineMillis: UInt64, _ condition: () -> Bool) -> UInt64? {
        let deadline = System.now().nanos + .millis(deadlineMillis)
        while System.now().nanos < deadline {
            if condition() { return System.now().nanos }
            System.sleep(millis: 10)
        }
        return nil
    }

    static func stats(_ client: ControlClient) -> [JSON] {
        client.request("stats", options: RequestOptions(idleTimeout: .millis(100), deadline: .millis(500))).replies.map(\.json)
    }

    static func alive(_ client: ControlClient) -> Set<String> {
        Set(client.request("ping", options: RequestOptions(idleTimeout: .millis(100), deadline: .millis(500))).replies.map(\.name))
    }

    /// Every agent answering reports `count` alive members, itself included.
    static func allSee(_ client: ControlClient, _ count: Int) -> Bool {
        let all = stats(client)
        return all.count == count && all.allSatisfy { $0["members"]?["alive"]?.uint64Value == UInt64(count) }
    }

    static func holds(_ client: ControlClient, _ name: String, _ id: String) -> Bool {
        let result = client.request("revoked", target: name, options: RequestOptions(expected: 1, idleTimeout: .millis(100), deadline: .millis(500)))
        return result.replies.first?.json["ids"]?.arrayValue?.contains { $0["id"]?.stringValue == id } == true
    }

    static func deadEverywhere(_ client: ControlClient, _ name: String, survivors: Int) -> Bool {
        let views = client.request("members", options: RequestOptions(idleTimeout: .millis(100), deadline: .millis(500))).replies
        return views.count == survivors && views.allSatisfy { view in
            view.json["members"]?.arrayValue?.contains { $0["name"]?.stringValue == name && $0["status"]?.stringValue == "dead" } == true
        }
    }

    static func agreedLeader(_ client: ControlClient, _ topic: String, excluding: String) -> String? {
        let views = client.request("leader", args: [topic], options: RequestOptions(idleTimeout: .millis(100), deadline: .millis(500))).replies
        let leaders = Set(views.map { $0.json["leader"]?.stringValue ?? "" })
        guard leaders.count == 1, let leader = leaders.first, !leader.isEmpty, leader != excluding else { return nil }
        return leader
    }
}
