import Starling
import StarlingCore
import StarlingPOSIX
import StarlingTestSupport

/// Agent processes on loopback for one scenario, each with an event log; all are stopped when
/// the scenario ends, whatever happens.
final class AgentCluster {
    let group: Endpoint
    let folder: String
    let binary: String
    private(set) var agents: [String: ChildProcess] = [:]
    private(set) var spawnedAt: [String: UInt64] = [:]
    let client: ControlClient

    init(binary: String) throws {
        self.binary = binary
        group = LoopbackAgents.randomGroup()
        folder = "/tmp/starling-bench-\(System.processID)-\(group.port)"
        try? System.makeDirectory(folder)
        client = try ControlClient(group: group)
    }

    deinit { stopAll() }

    func events(_ name: String) -> String { LoopbackAgents.eventLog(folder: folder, name: name) }

    /// Starts one agent; returns the wall µs just before the spawn.
    @discardableResult
    func start(_ name: String, _ extra: [String] = []) throws -> UInt64 {
        let at = System.wallMicros()
        agents[name] = try LoopbackAgents.spawn(binary, name: name, group: group, folder: folder, extra: extra)
        spawnedAt[name] = at
        return at
    }

    /// kill -9; returns the wall µs just before the signal.
    func kill(_ name: String) -> UInt64 {
        let at = System.wallMicros()
        agents[name]?.kill()
        agents[name]?.wait()
        agents[name] = nil
        return at
    }

    /// SIGTERM (the agent says GOODBYE) and wait for the exit; kill -9 after 3 s.
    func stop(_ name: String) {
        agents[name]?.stop()
        agents[name] = nil
    }

    func stopAll() {
        for child in agents.values { child.signal() }
        for child in agents.values where child.wait(timeoutMillis: 3_000) == nil { child.kill(); child.wait() }
        agents.removeAll()
    }

    var names: [String] { agents.keys.sorted() }

    func request(_ command: String, args: [String] = [], target: String = "", expected: Int? = nil, deadlineMillis: UInt64 = 2_000) -> RequestResult {
        client.request(command, args: args, target: target,
            options: RequestOptions(expected: expected, idleTimeout: .millis(300), deadline: .millis(deadlineMillis)))
    }

    /// Starts `count` agents named `prefix`0, `prefix`1, … with `extra` flags and waits until
    /// each lists all of them; false when they did not converge.
    func startConverged(_ count: Int, prefix: String, _ extra: [String] = []) throws -> Bool {
        for index in 0..<count { try start("\(prefix)\(index)", extra) }
        return waitForFullView(count)
    }

    /// Polls until every agent reports `count` live members (alive or suspect, itself included):
    /// under injected loss some member is always briefly suspect somewhere.
    func waitForFullView(_ count: Int, timeoutMillis: UInt64 = 30_000) -> Bool {
        let deadline = System.now().nanos + .millis(timeoutMillis)
        while System.now().nanos < deadline {
            let stats = request("stats", expected: count).replies
            let live = stats.map { ($0.json["members"]?["alive"]?.numberValue ?? 0) + ($0.json["members"]?["suspect"]?.numberValue ?? 0) }
            if stats.count == count && live.allSatisfy({ $0 == Double(count) }) { return true }
            System.sleep(millis: 50)
        }
        return false
    }

    /// Per agent, the wall µs at which it had logged `joined` for `others` distinct names.
    func fullViewTimes(others: Int) -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        for name in names {
            var seen = Set<String>()
            for record in EventLog.read(events(name)) where record.kind == "joined" {
                seen.insert(record.event["name"]?.stringValue ?? "")
                if seen.count >= others { out[name] = record.micros; break }
            }
        }
        return out
    }

    func pid(_ name: String) -> Int32? { agents[name]?.pid }

    /// Polls `name`'s event log until a record logged at or after `since` matches, for at most
    /// `timeoutMillis`.
    func waitForEvent(_ name: String, since: UInt64 = 0, timeoutMillis: UInt64, _ predicate: (EventLog.Record) -> Bool) -> EventLog.Record? {
        let deadline = System.now().nanos + .millis(timeoutMillis)
        while true {
            if let record = EventLog.first(events(name), since: since, predicate) { return record }
            if System.now().nanos >= deadline { return nil }
            System.sleep(millis: 10)
        }
    }

    /// Why a request did not get a reply from each of `expected` agents; nil when it did.
    static func shortfall(_ result: RequestResult, expected: Int) -> String? {
        guard result.replies.count < expected else { return nil }
        switch result.reason {
        case .deadline: return "timeout (request deadline, replies missing)"
        case .idle: return "missing reply (no reply for 300 ms)"
        case .allReplied: return "missing reply (agents expected fewer)"
        case .limit: return "missing reply (stopped early)"
        }
    }
}

/// /proc readings of another process.
enum ProcessInfo {
    static func residentKB(_ pid: Int32) -> Double {
        guard let bytes = try? System.readFile("/proc/\(pid)/status") else { return 0 }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        }
        return 0
    }

    /// utime + stime in clock ticks (1/100 s on Linux).
    static func cpuTicks(_ pid: Int32) -> Double {
        guard let bytes = try? System.readFile("/proc/\(pid)/stat") else { return 0 }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return 0 }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 13 else { return 0 }
        return (Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)
    }
}
