import Starling
import StarlingCore
import StarlingPOSIX

/// Scenarios with agents as processes on loopback. Times come from the agents' event logs.
struct ClusterScenarios {
    let report: Report
    let binary: String
    let quick: Bool

    func ms(_ micros: UInt64, since: UInt64) -> Double { micros >= since ? Double(micros - since) / 1_000 : 0 }

    /// join: every agent lists every other alive; then one more agent's start → synced.
    func join(sizes: [Int]) throws {
        for n in sizes {
            let cluster = try AgentCluster(binary: binary)
            var lastSpawn: UInt64 = 0
            for index in 0..<n { lastSpawn = try cluster.start("j\(index)") }
            guard cluster.waitForFullView(n, timeoutMillis: 60_000) else {
                report.add("join", "did not converge within 60 s", 1, "flag", n: n)
                continue
            }
            let times = cluster.fullViewTimes(others: n - 1)
            report.add("join", "all list all alive, after last start", ms(times.values.max() ?? lastSpawn, since: lastSpawn), "ms", n: n)
            var synced: [Double] = []
            var afterSockets: [Double] = []
            for round in 0..<(quick ? 2 : 5) {
                let name = "late\(round)"
                let at = try cluster.start(name)
                _ = cluster.waitForFullView(n + 1, timeoutMillis: 10_000)
                let log = EventLog.read(cluster.events(name))
                if let done = log.first(where: { $0.kind == "synced" || $0.kind == "alone" }), let open = log.first(where: { $0.kind == "searching" }) {
                    synced.append(ms(done.micros, since: at))
                    afterSockets.append(ms(done.micros, since: open.micros))
                }
                _ = cluster.kill(name)
                System.sleep(millis: 100)
            }
            report.summary("join", "process start → synced and announced", synced, "ms", n: n)
            report.summary("join", "sockets open → synced (mingle)", afterSockets, "ms", n: n)
            cluster.stopAll()
        }
    }

    /// detect: kill -9 at random moments; per-survivor and all-survivors detection times.
    func detect(n: Int, kills: Int) throws {
        let cluster = try AgentCluster(binary: binary)
        guard try cluster.startConverged(n, prefix: "d") else { return report.add("detect", "cluster did not converge", 1, "flag", n: n) }
        var perSurvivor: [Double] = []
        var all: [Double] = []
        for round in 0..<kills {
            System.sleep(millis: 300 + System.randomUInt64() % 700)
            let victim = "d\(round % n)"
            let killedAt = cluster.kill(victim)
            System.sleep(millis: 2_500)
            var times: [Double] = []
            for name in cluster.names {
                if let record = EventLog.first(cluster.events(name), since: killedAt, { $0.kind == "dead" && $0.event["name"]?.stringValue == victim }) {
                    times.append(ms(record.micros, since: killedAt))
                }
            }
            perSurvivor += times
            if times.count == cluster.names.count { all.append(times.max() ?? 0) } else { all.append(.infinity) }
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
        guard try cluster.startConverged(n, prefix: "f", ["--drop-rate", String(loss)]) else { return report.add("falsepos", "cluster did not converge", 1, "flag", n: n) }
        let since = System.wallMicros()
        let end = System.now().nanos + seconds * 1_000_000_000
        var revokeTimes: [Double] = []
        var revokeMissed = 0
        var elections = 0
        var agreed = 0
        var electionTimes: [Double] = []
        var round = 0
        while System.now().nanos < end {
            round += 1
            let id = "soak-\(round)"
            let start = System.now().nanos
            _ = cluster.request("revoke", args: [id], expected: n)
            // Held everywhere? Each poll may itself lose datagrams, so agents that reported the
            // id once are remembered; loss of the revoke itself is repaired by anti-entropy.
            var holders = Set<String>()
            while holders.count < n && System.now().nanos < start + .millis(8_000) {
                for reply in cluster.request("revoked", expected: n).replies
                where reply.json["ids"]?.arrayValue?.contains(where: { $0["id"]?.stringValue == id }) == true {
                    holders.insert(reply.name)
                }
                if holders.count < n { System.sleep(millis: 50) }
            }
            if holders.count == n { revokeTimes.append(Double(System.now().nanos - start) / 1e6) } else { revokeMissed += 1 }
            // An election: every agent's latest answer must name the same leader within 8 s.
            let topic = "soak-\(round % 3)"
            let electedAt = System.now().nanos
            _ = cluster.request("elect", args: [topic], expected: n, deadlineMillis: 3_000)
            elections += 1
            var views: [String: String] = [:]
            while System.now().nanos < electedAt + .millis(8_000) {
                for reply in cluster.request("leader", args: [topic], expected: n).replies { views[reply.name] = reply.json["leader"]?.plain ?? "-" }
                let leaders = Set(views.values)
                if views.count == n && leaders.count == 1 && !leaders.contains("-") {
                    agreed += 1
                    electionTimes.append(Double(System.now().nanos - electedAt) / 1e6)
                    break
                }
                System.sleep(millis: 100)
            }
            let left = end > System.now().nanos ? end - System.now().nanos : 0
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
        report.summary("falsepos", "revoke held by all under loss", revokeTimes, "ms", n: n)
        report.add("falsepos", "revokes not held by all within 8 s", Double(revokeMissed), "count", n: n)
        report.add("falsepos", "elections agreed by all within 8 s under loss", Double(agreed), "of \(elections)", n: n)
        report.summary("falsepos", "election → all agents name one leader, under loss", electionTimes, "ms", n: n)
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
                guard cluster.waitForFullView(3) else { continue }
                let before = cluster.request("stats", expected: 3).replies.reduce(0.0) { $0 + ($1.json["bytes_out"]?.numberValue ?? 0) }
                var extra: [String] = []
                if loss > 0 { extra = ["--drop-rate", String(loss)] }
                try cluster.start("joiner", extra)
                _ = cluster.waitForFullView(4)
                let deadline = System.now().nanos + .millis(10_000)
                var done: EventLog.Record?
                while done == nil && System.now().nanos < deadline {
                    done = EventLog.first(cluster.events("joiner")) { $0.kind == "synced" || $0.kind == "alone" }
                    System.sleep(millis: 20)
                }
                let open = EventLog.first(cluster.events("joiner")) { $0.kind == "searching" }
                let label = loss > 0 ? " at \(Int(loss * 100)) % loss" : ""
                if let done, let open {
                    report.add("mingle", "\(count) ids: sockets open → synced\(label)", ms(done.micros, since: open.micros), "ms")
                    report.add("mingle", "\(count) ids: ids received\(label)", done.event["received"]?.numberValue ?? 0, "ids")
                }
                System.sleep(millis: 300)
                let after = cluster.request("stats", target: "s*").replies.reduce(0.0) { $0 + ($1.json["bytes_out"]?.numberValue ?? 0) }
                report.add("mingle", "\(count) ids: bytes sent by neighbours\(label)", after - before, "bytes")
                cluster.stopAll()
            }
        }
    }
}
