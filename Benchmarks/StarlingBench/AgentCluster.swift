@_spi(Testing) import Starling
import StarlingCore
import StarlingPOSIX
import StarlingTestSupport

/// Agent processes on loopback for one scenario, each with an event log; all are stopped when
/// the scenario ends, whatever happens.
final class AgentCluster {
    let agents: LoopbackCluster
    var group: Endpoint { agents.group }
    var folder: String { agents.folder }
    private(set) var spawnedAt: [String: UInt64] = [:]
    let client: ControlClient

    init(binary: String) throws {
        let group = LoopbackCluster.randomGroup()
        agents = LoopbackCluster(binary: binary, folder: "/tmp/starling-bench-\(System.processID)-\(group.port)", group: group)
        client = try ControlClient(group: group)
    }

    func events(_ name: String) -> String { agents.eventLog(name) }

    /// Starts one agent; returns the wall µs just before the spawn.
    @discardableResult
    func start(_ name: String, _ extra: [String] = []) throws -> UInt64 {
        let at = System.wallMicros()
        try agents.start(name, extra)
        spawnedAt[name] = at
        return at
    }

    /// kill -9; returns the wall µs just before the signal.
    func kill(_ name: String) -> UInt64 {
        let at = System.wallMicros()
        agents.kill(name)
        return at
    }

    /// SIGTERM (the agent says GOODBYE) and wait for the exit; kill -9 after 3 s.
    func stop(_ name: String) { agents.stop(name) }

    func stopAll() { agents.stopAll() }

    var names: [String] { agents.children.keys.sorted() }

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
        // Each agent's latest answer counts: under heavy loss one poll rarely hears all of them.
        var full: [String: Bool] = [:]
        while System.now().nanos < deadline {
            var options = RequestOptions(expected: count, idleTimeout: .millis(300), deadline: .millis(2_000))
            if let responders = client.liveResponders(target: "", options: options), responders.count == count {
                options.expected = nil
                options.responders = responders
            }
            for reply in client.request("stats", options: options).replies {
                let live = (reply.json["members"]?["alive"]?.numberValue ?? 0) + (reply.json["members"]?["suspect"]?.numberValue ?? 0)
                full[reply.name] = live == Double(count)
            }
            if full.count == count && full.values.allSatisfy({ $0 }) { return true }
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

    func pid(_ name: String) -> Int32? { agents.children[name]?.pid }

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
