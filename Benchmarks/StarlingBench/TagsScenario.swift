@_spi(Testing) import Starling
import StarlingCore
import StarlingPOSIX

extension ClusterScenarios {
    /// `tags` (issue 18, member tags): n agents on loopback, each with four tags (one of them a
    /// 100-byte value) in the `tag` lines of its `--config` file. Each round one agent (in turn)
    /// gets a new `gen` tag in its file and a SIGHUP, as an operator changes tags; the event logs
    /// tell when each agent's view took the change (its `tags` event). A sample is the last
    /// agent's event minus the changer's own: the time until the change is in every view. With
    /// `loss` every agent drops that share of the datagrams it receives. A round fails when some
    /// view lacks the change after 5 s. At 0 % loss the scenario also reports each agent's
    /// resident memory, 6 s after the views agree (the start-up code unmapped at 5 s).
    func tags(n: Int, rounds: Int, loss: Double) throws {
        let label = "tag change in every view, \(Int(loss * 100)) % loss"
        let cluster = try AgentCluster(binary: binary)
        defer { cluster.stopAll() }
        let extra = loss > 0 ? ["--drop-rate", String(loss)] : []
        func write(_ index: Int, generation: Int) throws {
            let tags = ["role=r\(index % 3)", "zone=z\(index % 2)", "gen=\(generation)", "note=" + String(repeating: "n", count: 100)]
            let text = tags.map { "tag = \($0)\n" }.joined()
            try System.writeAtomically("\(cluster.folder)/g\(index).conf", Array(text.utf8))
        }
        for index in 0..<n {
            try write(index, generation: 0)
            try cluster.start("g\(index)", ["--config", "\(cluster.folder)/g\(index).conf"] + extra)
        }
        guard cluster.waitForFullView(n) else {
            return report.summary("tags", label, .failing("cluster did not converge within 30 s"), "ms", n: n)
        }
        if loss == 0 {
            System.sleep(millis: 6_000)
            let pids = cluster.names.compactMap { cluster.pid($0) }
            report.summary("tags", "resident memory per agent, \(n) members with 4 tags each (118 bytes)",
                Samples(pids.map { Double(System.residentBytes(of: $0)) / 1_048_576 }), "MB", n: n)
        }
        var samples = Samples()
        for round in 1...rounds {
            let changer = (round * 7) % n
            let name = "g\(changer)"
            try write(changer, generation: round)
            let since = System.wallMicros()
            guard let pid = cluster.pid(name) else { samples.fail("\(name) is not running"); continue }
            System.signal(pid, Signals.hangup)
            let deadline = System.now().nanos + .millis(5_000)
            var times: [String: UInt64] = [:]
            while System.now().nanos < deadline {
                for agent in cluster.names where times[agent] == nil {
                    let record = EventLog.read(cluster.events(agent)).first { record in
                        record.micros >= since && record.kind == "tags" && record.event["name"]?.stringValue == name
                            && record.event["tags"]?["gen"]?.stringValue == String(round)
                    }
                    if let record { times[agent] = record.micros }
                }
                if times.count == n { break }
                System.sleep(millis: 5)
            }
            guard times.count == n, let start = times[name] else {
                samples.fail("round \(round): the change reached \(times.count) of \(n) views within 5 s")
                continue
            }
            samples.add(ms(times.values.max() ?? start, since: start))
        }
        report.summary("tags", label, samples, "ms", n: n)
    }
}
