import Starling
import StarlingCore
import StarlingPOSIX

extension ClusterScenarios {
    /// `uevent` (issue 18, user events): n agents on loopback; each round one of them (in turn)
    /// is asked, as `starling event` does, to send a user event, and the event logs tell when
    /// each agent delivered it. A sample is the last agent's delivery time minus the origin's own
    /// (the origin delivers first, then sends): the time until the event is on all n agents.
    /// With `loss` every agent drops that share of the datagrams it receives (`--drop-rate`,
    /// as `falsepos`), acknowledgements and re-sends included. A round fails when some agent
    /// has not delivered the event within 3 s, or delivered it twice.
    func userEvents(n: Int, rounds: Int, loss: Double) throws {
        let label = "user event on all agents, \(Int(loss * 100)) % loss"
        let cluster = try AgentCluster(binary: binary)
        defer { cluster.stopAll() }
        let extra = loss > 0 ? ["--drop-rate", String(loss)] : []
        guard try cluster.startConverged(n, prefix: "u", extra) else {
            return report.summary("uevent", label, .failing("cluster did not converge within 30 s"), "ms", n: n)
        }
        var samples = Samples()
        var origins = Samples()
        for round in 0..<rounds {
            let origin = "u\(round % n)"
            let name = "bench-\(round)"
            // As `starling event` does: the origin's address, so that a lost request is asked again.
            var options = RequestOptions(expected: 1, idleTimeout: .millis(300), deadline: .millis(3_000))
            options.responders = cluster.client.liveResponders(target: origin, options: options)
            let since = System.wallMicros()
            let asked = cluster.client.request("event", args: [name, "payload \(round)"], target: origin, options: options)
            guard asked.replies.first?.status == .ok else {
                samples.fail("the origin did not answer the event command")
                continue
            }
            let deadline = System.now().nanos + .millis(3_000)
            var times: [String: [UInt64]] = [:]
            while System.now().nanos < deadline {
                times = [:]
                for agent in cluster.names {
                    for record in EventLog.read(cluster.events(agent)) where record.micros >= since && record.kind == "user"
                        && record.event["name"]?.stringValue == name {
                        times[agent, default: []].append(record.micros)
                    }
                }
                if times.count == n { break }
                System.sleep(millis: 5)
            }
            // Give a duplicate delivery a moment to show before judging the round.
            System.sleep(millis: 20)
            let twice = cluster.names.filter { agent in
                EventLog.read(cluster.events(agent)).filter { $0.micros >= since && $0.kind == "user" && $0.event["name"]?.stringValue == name }.count > 1
            }
            guard twice.isEmpty else {
                samples.fail("delivered twice on \(twice.count) agents")
                continue
            }
            guard times.count == n, let start = times[origin]?.first else {
                samples.fail("delivered on \(times.count) of \(n) agents within 3 s")
                continue
            }
            let last = times.values.compactMap(\.first).max() ?? start
            samples.add(ms(last, since: start))
            origins.add(ms(start, since: since))
        }
        report.summary("uevent", label, samples, "ms", n: n)
        report.summary("uevent", "request → origin delivered (\(Int(loss * 100)) % loss)", origins, "ms", n: n)
    }
}
