import Starling
import StarlingCore
import StarlingPOSIX

/// Scenarios with agents as processes on loopback. Times come from the agents' event logs.
struct ClusterScenarios {
    let report: Report
    let binary: String
    let quick: Bool

    func ms(_ micros: UInt64, since: UInt64) -> Double { micros >= since ? Double(micros - since) / 1_000 : 0 }

    /// join: every agent lists every other alive; then one more agent, five times into a settled
    /// cluster (the joiner stops with GOODBYE between rounds), and a few times within 200 ms of a
    /// member's kill -9 (issue 14 item 27: the joiner may wait for the dead member's reply).
    func join(sizes: [Int]) throws {
        for n in sizes {
            let cluster = try AgentCluster(binary: binary)
            var lastSpawn: UInt64 = 0
            for index in 0..<n { lastSpawn = try cluster.start("j\(index)") }
            var converged = Samples()
            guard cluster.waitForFullView(n, timeoutMillis: 60_000) else {
                report.summary("join", "all list all alive, after last start", .failing("did not converge within 60 s"), "ms", n: n)
                continue
            }
            let times = cluster.fullViewTimes(others: n - 1)
            if times.count == n, let last = times.values.max() {
                converged.add(ms(last, since: lastSpawn))
            } else {
                converged.fail("an event log lacks a joined event")
            }
            report.summary("join", "all list all alive, after last start", converged, "ms", n: n)
            var started = Samples()
            var mingled = Samples()
            for round in 0..<5 {
                let name = "late\(round)"
                let at = try cluster.start(name)
                joinerRound(cluster, name, spawnedAt: at, started: &started, mingled: &mingled)
                cluster.stop(name)
                _ = cluster.waitForFullView(n, timeoutMillis: 10_000)
            }
            report.summary("join", "settled: process start → synced and announced", started, "ms", n: n)
            report.summary("join", "settled: sockets open → synced (mingle)", mingled, "ms", n: n)
            var afterCrashStarted = Samples()
            var afterCrash = Samples()
            for round in 0..<(quick ? 2 : 3) {
                let victim = "victim\(round)"
                try cluster.start(victim)
                guard cluster.waitForFullView(n + 1, timeoutMillis: 10_000) else {
                    afterCrash.fail("the member to kill did not join within 10 s")
                    cluster.stop(victim)
                    continue
                }
                _ = cluster.kill(victim)
                System.sleep(millis: 200)
                let name = "after-crash\(round)"
                let at = try cluster.start(name)
                joinerRound(cluster, name, spawnedAt: at, started: &afterCrashStarted, mingled: &afterCrash)
                cluster.stop(name)
                // The victim must be dead everywhere before the next round starts.
                _ = cluster.waitForFullView(n, timeoutMillis: 10_000)
            }
            report.summary("join", "200 ms after a member's kill -9: sockets open → synced (mingle)", afterCrash, "ms", n: n)
            cluster.stopAll()
        }
    }

    /// A joiner's mingle: its `synced` (or `alone`) and `searching` records, and why the round
    /// failed (found nobody, hit the mingle deadline, no event within 10 s), nil when it did not.
    private func awaitSync(_ cluster: AgentCluster, _ name: String) -> (done: EventLog.Record?, open: EventLog.Record?, failure: String?) {
        guard let done = cluster.waitForEvent(name, timeoutMillis: 10_000, { $0.kind == "synced" || $0.kind == "alone" }) else {
            return (nil, nil, "no synced event within 10 s")
        }
        let open = EventLog.first(cluster.events(name)) { $0.kind == "searching" }
        if done.kind == "alone" { return (done, open, "found nobody (alone)") }
        if done.event["complete"] == .bool(false) { return (done, open, "hit the mingle deadline") }
        return (done, open, open == nil ? "no searching event" : nil)
    }

    /// One joiner's round into `started` (process start → synced) and `mingled` (sockets open →
    /// synced); a failed round keeps its times with the failure.
    private func joinerRound(_ cluster: AgentCluster, _ name: String, spawnedAt: UInt64, started: inout Samples, mingled: inout Samples) {
        let (done, open, failure) = awaitSync(cluster, name)
        let sinceStart = done.map { ms($0.micros, since: spawnedAt) }
        let sinceOpen = done.flatMap { done in open.map { ms(done.micros, since: $0.micros) } }
        if let failure {
            started.fail(failure, value: sinceStart)
            mingled.fail(failure, value: sinceOpen)
        } else if let sinceStart, let sinceOpen {
            started.add(sinceStart)
            mingled.add(sinceOpen)
        }
    }

    /// detect: kill -9 at random moments; per-survivor and all-survivors detection times.
    func detect(n: Int, kills: Int) throws {
        let cluster = try AgentCluster(binary: binary)
        guard try cluster.startConverged(n, prefix: "d") else {
            return report.summary("detect", "kill -9 → dead on every survivor", .failing("cluster did not converge within 30 s"), "ms", n: n)
        }
        var perSurvivor = Samples()
        var all = Samples()
        for round in 0..<kills {
            System.sleep(millis: 300 + System.randomUInt64() % 700)
            let victim = "d\(round % n)"
            let killedAt = cluster.kill(victim)
            System.sleep(millis: 2_500)
            var times: [Double] = []
            for name in cluster.names {
                if let record = EventLog.first(cluster.events(name), since: killedAt, { $0.kind == "dead" && $0.event["name"]?.stringValue == victim }) {
                    let time = ms(record.micros, since: killedAt)
                    times.append(time)
                    perSurvivor.add(time)
                } else {
                    perSurvivor.fail("no dead event within 2.5 s")
                }
            }
            if times.count == cluster.names.count, let last = times.max() { all.add(last) } else { all.fail("a survivor logged no dead event within 2.5 s") }
            try cluster.start(victim)
            _ = cluster.waitForFullView(n)
        }
        report.summary("detect", "kill -9 → dead, per survivor", perSurvivor, "ms", n: n)
        report.summary("detect", "kill -9 → dead on every survivor", all, "ms", n: n)
    }

    /// falsepos (the soak): loss on every agent, nobody killed. Counts false deaths and
    /// suspicions, and every 10 s checks that a revoke reaches all agents and an election agrees.
    func falsePositives(n: Int, seconds: UInt64, loss: Double) throws {
        let cluster = try AgentCluster(binary: binary)
        guard try cluster.startConverged(n, prefix: "f", ["--drop-rate", String(loss)]) else {
            return report.summary("falsepos", "revoke held by all under loss", .failing("cluster did not converge within 30 s"), "ms", n: n)
        }
        let since = System.wallMicros()
        let end = System.now().nanos + seconds * 1_000_000_000
        var revokes = Samples()
        var acknowledged = Samples()
        var elections = Samples()
        var round = 0
        while System.now().nanos < end {
            round += 1
            let id = "soak-\(round)"
            let start = System.now().nanos
            // As `starling revoke` does: who should acknowledge, from one agent's view, so that the
            // silent ones are asked again by unicast (Protocol.md §6.5).
            let asking = RequestOptions(idleTimeout: .millis(300), deadline: .millis(2_000))
            var options = asking
            options.responders = cluster.client.liveResponders(target: "", options: asking)
            if options.responders == nil { options.expected = n }
            let acks = cluster.client.request("revoke", args: [id], options: options).replies.filter { $0.status == .ok }.count
            if acks >= n { acknowledged.add(Double(System.now().nanos - start) / 1e6) } else { acknowledged.fail("\(acks) of \(n) acknowledged") }
            // Held everywhere? Each poll may itself lose datagrams, so agents that reported the
            // id once are remembered; loss of the revoke itself is repaired by anti-entropy.
            var holders = Set<String>()
            while holders.count < n && System.now().nanos < start + .millis(8_000) {
                // The poll re-asks silent agents too: its own losses must not be what is measured.
                for reply in cluster.client.request("revoked", options: options).replies
                where reply.json["ids"]?.arrayValue?.contains(where: { $0["id"]?.stringValue == id }) == true {
                    holders.insert(reply.name)
                }
                if holders.count < n { System.sleep(millis: 10) }
            }
            if holders.count == n { revokes.add(Double(System.now().nanos - start) / 1e6) } else { revokes.fail("not held by every agent within 8 s") }
            // An election: every agent's latest answer must name the same leader within 8 s.
            let topic = "soak-\(round % 3)"
            let electedAt = System.now().nanos
            // As `starling elect` does: the silent agents are asked again (Protocol.md §6.5).
            var electOptions = options
            electOptions.deadline = .millis(3_000)
            _ = cluster.client.request("elect", args: [topic], options: electOptions)
            var views: [String: String] = [:]
            var agreed = false
            while !agreed && System.now().nanos < electedAt + .millis(8_000) {
                for reply in cluster.client.request("leader", args: [topic], options: options).replies { views[reply.name] = reply.json["leader"]?.plain ?? "-" }
                let leaders = Set(views.values)
                if views.count == n && leaders.count == 1 && !leaders.contains("-") {
                    agreed = true
                    elections.add(Double(System.now().nanos - electedAt) / 1e6)
                } else {
                    System.sleep(millis: 10)
                }
            }
            if !agreed { elections.fail("no single leader named by every agent within 8 s") }
            let now = System.now().nanos
            let left = end > now ? end - now : 0
            System.sleep(millis: min(left / 1_000_000, 10_000))
        }
        var deaths = 0
        var suspicions = 0
        for name in cluster.names {
            for record in EventLog.read(cluster.events(name)) where record.micros >= since {
                if record.kind == "dead" { deaths += 1 }
                if record.kind == "suspect" { suspicions += 1 }
            }
        }
        report.add("falsepos", "false deaths (\(Int(loss * 100)) % loss, \(seconds) s)", Double(deaths), "count", n: n)
        report.add("falsepos", "suspicions, all refuted (flaps)", Double(suspicions), "count", n: n)
        report.summary("falsepos", "revoke acknowledged by all under loss (as starling revoke)", acknowledged, "ms", n: n)
        report.summary("falsepos", "revoke held by all under loss", revokes, "ms", n: n)
        report.summary("falsepos", "election → all agents name one leader, under loss", elections, "ms", n: n)
    }

    /// mingle: a joiner pulling 0 / 10k / 50k ids from 3 agents, with and without loss.
    func mingle(sizes: [Int]) throws {
        for count in sizes {
            for loss in [0.0, 0.1] {
                let cluster = try AgentCluster(binary: binary)
                let state = "\(cluster.folder)/seed-state"
                try? System.makeDirectory(state)
                let now = System.now().wallMillis
                let document = JSON.object([("version", .int(1)), ("revoked", .array((0..<count).map {
                    .array([.string("d9b1f8a2-5c1e-4f5e-9a51-\(String(100_000_000_000 + $0))"), .int(now)])
                }))])
                try System.writeAtomically(state + "/revoked.json", Array(document.serialized().utf8))
                for index in 0..<3 {
                    let dir = "\(cluster.folder)/s\(index)"
                    try? System.makeDirectory(dir)
                    try System.writeAtomically(dir + "/revoked.json", try System.readFile(state + "/revoked.json"))
                    try cluster.start("s\(index)", ["--state-dir", dir])
                }
                let label = loss > 0 ? " at \(Int(loss * 100)) % loss" : ""
                let figure = "\(count) ids: sockets open → synced\(label)"
                guard cluster.waitForFullView(3) else {
                    report.summary("mingle", figure, .failing("seed agents did not converge within 30 s"), "ms")
                    cluster.stopAll()
                    continue
                }
                let before = cluster.request("stats", expected: 3).replies.reduce(0.0) { $0 + ($1.json["bytes_out"]?.numberValue ?? 0) }
                var extra: [String] = []
                if loss > 0 { extra = ["--drop-rate", String(loss)] }
                try cluster.start("joiner", extra)
                var synced = Samples()
                let (done, open, failure) = awaitSync(cluster, "joiner")
                let time = done.flatMap { done in open.map { ms(done.micros, since: $0.micros) } }
                let received = done?.event["received"]?.numberValue ?? 0
                if let failure {
                    synced.fail(failure, value: time)
                } else if received < Double(count) {
                    synced.fail("received fewer ids than the seeds hold", value: time)
                } else if let time {
                    synced.add(time)
                }
                if done != nil { report.add("mingle", "\(count) ids: ids received\(label)", received, "ids") }
                report.summary("mingle", figure, synced, "ms")
                System.sleep(millis: 300)
                let after = cluster.request("stats", target: "s*").replies.reduce(0.0) { $0 + ($1.json["bytes_out"]?.numberValue ?? 0) }
                report.add("mingle", "\(count) ids: bytes sent by neighbours\(label)", after - before, "bytes")
                cluster.stopAll()
            }
        }
    }
}
