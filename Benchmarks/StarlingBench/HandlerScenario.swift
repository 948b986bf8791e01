import Starling
import StarlingCore
import StarlingPOSIX
import StarlingTestSupport

/// `handlers` (issue 18, event handlers): event → handler process started. One agent, embedded
/// in this process on loopback, runs `exec date +%s%N >> FILE` for each `joined` event; agents
/// join it one at a time (each leaves before the next). A sample is the handler's wall clock
/// minus the `t_us` its agent wrote for the `joined` event in its event log (the same clock,
/// taken when the event was emitted). It includes the shell's start and the exec of `date`, so
/// it bounds the time to the handler's first command from above.
enum HandlerScenario {
    static func run(_ report: Report, rounds: Int) throws {
        let base = "/tmp/starling-bench-handlers-\(System.processID)-\(System.randomUInt64())"
        let (eventLog, started) = (base + ".events", base + ".started")
        defer { for path in [eventLog, started] { try? System.removeFile(path) } }
        let group = LoopbackCluster.randomGroup()
        var config = Configuration.loopback(name: "h0")
        config.group = group
        config.eventLog = eventLog
        config.logLevel = .error
        config.eventHandlers = [EventHandler(filter: ["joined"], command: "exec date +%s%N >> \(started)")]
        let agent = try Agent(config)
        try agent.start()
        defer {
            agent.shutdown()
            agent.waitUntilFinished()
        }
        var samples = Samples()
        var joinedNames: [String] = []
        for round in 0..<rounds {
            var joinerConfig = Configuration.loopback(name: "hj\(round)")
            joinerConfig.group = group
            joinerConfig.logLevel = .error
            let joiner = try Agent(joinerConfig)
            try joiner.start()
            let ran = waitUntil(millis: 5_000) { agent.eventHandlerStats.succeeded + agent.eventHandlerStats.failed >= UInt64(round + 1) }
            joiner.shutdown()
            joiner.waitUntilFinished()
            // The next joiner meets an agent that has seen this one leave.
            _ = waitUntil(millis: 2_000) { !agent.members().contains { $0.name == "hj\(round)" && $0.isLive } }
            if ran { joinedNames.append("hj\(round)") } else { samples.fail("no handler run within 5 s") }
        }
        let stats = agent.eventHandlerStats
        let handlerTimes = lines(started).compactMap { UInt64($0) }
        var emitted: [String: UInt64] = [:]
        for line in lines(eventLog) {
            guard let record = try? JSON.parse(line), record["event"]?["event"]?.stringValue == "joined",
                  let name = record["event"]?["name"]?.stringValue, let micros = record["t_us"]?.numberValue else { continue }
            emitted[name] = UInt64(max(0, micros))
        }
        // Runs are one at a time, in round order: the i-th line is the i-th joiner's.
        for (index, name) in joinedNames.enumerated() {
            guard index < handlerTimes.count, let micros = emitted[name] else {
                samples.fail("no handler time or no joined record")
                continue
            }
            let nanos = handlerTimes[index]
            samples.add(Double(Int64(bitPattern: nanos &- micros &* 1_000)) / 1e6)
        }
        report.summary("handlers", "event → handler's first command ran (sh + exec date)", samples, "ms")
        report.add("handlers", "handler runs failed or timed out", Double(stats.failed + stats.timedOut), "of \(stats.started)")
    }

    private static func waitUntil(millis: UInt64, _ condition: () -> Bool) -> Bool {
        var waited: UInt64 = 0
        while !condition() {
            if waited >= millis { return false }
            System.sleep(millis: 1)
            waited += 1
        }
        return true
    }

    private static func lines(_ path: String) -> [String] {
        String(decoding: (try? System.readFile(path)) ?? [], as: UTF8.self).split(separator: "\n").map(String.init)
    }
}
