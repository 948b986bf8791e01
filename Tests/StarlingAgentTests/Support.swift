import Foundation
@_spi(Testing) import Starling
import StarlingCore
import StarlingPOSIX
import StarlingTestSupport
import XCTest

/// Helpers for real-socket tests on loopback: unique groups, polling with generous deadlines,
/// and the built `starling` binary.
enum Loopback {
    /// A group port no other test uses at the same time.
    static func group() -> Endpoint { LoopbackCluster.randomGroup() }

    /// Waits until `condition` holds, polling every 10 ms; false after `seconds`.
    static func eventually(_ seconds: Double = 10, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }

    static var binary: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("starling").path
    }

    /// Skips (saying why) when the machine cannot loop multicast back on lo.
    static func requireMulticast() throws {
        do {
            _ = try UDPSocket.multicast(group: group(), interface: 0x7F00_0001)
        } catch {
            throw XCTSkip("multicast on loopback is unavailable here: \(error)")
        }
    }

    static func agent(_ name: String, group: Endpoint, _ configure: (inout Configuration) -> Void = { _ in }) throws -> Agent {
        var config = Configuration(name: name)
        config.group = group
        configure(&config)
        config.logLevel = .error
        let agent = try Agent(config)
        try agent.start()
        return agent
    }

    /// Runs the CLI to completion: (exit code, stdout, stderr).
    static func run(_ args: [String]) throws -> (Int32, String, String) {
        let finished = try ChildProcess.run(binary, args)
        return (finished.code, finished.stdout, finished.stderr)
    }
}

/// Agent processes started by a test and always stopped by it (kill -9), their folder removed.
final class Cluster {
    let agents: LoopbackCluster
    var group: Endpoint { agents.group }
    var folder: String { agents.folder }
    var children: [String: ChildProcess] {
        get { agents.children }
        set { agents.children = newValue }
    }

    init() {
        let folder = NSTemporaryDirectory() + "starling-test-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        agents = LoopbackCluster(binary: Loopback.binary, folder: folder, logLevel: "info")
    }

    /// Starts agent `name`; its stderr goes to its log unless `stderr` names another file.
    func start(_ name: String, _ extra: [String] = [], stderr: String? = nil) throws { try agents.start(name, extra, stderr: stderr) }

    /// Runs agent `name` to completion (a start that must fail): (exit code, stdout, stderr).
    func run(_ name: String, _ extra: [String] = []) throws -> (Int32, String, String) {
        let finished = try agents.run(name, extra)
        return (finished.code, finished.stdout, finished.stderr)
    }

    func kill(_ name: String) { agents.kill(name) }

    func stop(_ name: String) { agents.stop(name) }

    func log(_ name: String) -> String { (try? String(contentsOfFile: agents.logFile(name), encoding: .utf8)) ?? "" }

    deinit {
        agents.killAll()
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// One CLI call against this cluster.
    func cli(_ args: [String]) throws -> (Int32, String, String) {
        try Loopback.run(args + ["--group", group.description])
    }

    func client() throws -> ControlClient { try ControlClient(group: group) }

    /// Every agent's view as (observer → member name → status).
    func views() throws -> [String: [String: String]] {
        let result = try client().request("members", options: RequestOptions(idleTimeout: 200_000_000, deadline: 1_000_000_000))
        var out: [String: [String: String]] = [:]
        for reply in result.replies {
            var view: [String: String] = [:]
            for row in reply.json["members"]?.arrayValue ?? [] where row["self"]?.boolValue != true {
                view[row["name"]?.stringValue ?? ""] = row["status"]?.stringValue
            }
            out[reply.name] = view
        }
        return out
    }
}
