import Starling
import StarlingCore
import StarlingPOSIX

/// Agent processes on one loopback group, as the tests, `starling demo` and the benchmark start
/// them: one argument list, so that a flag added for one is added for all. Every agent writes
/// its event log and its stderr (its log) into `folder`. Loopback only: the agent's default
/// interface is `lo`, and no caller passes another. Whatever still runs is stopped when the
/// cluster goes.
public final class LoopbackCluster {
    /// The `starling` executable.
    public let binary: String
    public let group: Endpoint
    public let folder: String
    public let logLevel: String
    /// The running agents by name; a caller that reaps one itself removes it.
    public var children: [String: ChildProcess] = [:]

    /// A group on Starling's default address with a random port in 20,000–59,999, so that
    /// runs at the same time (tests in parallel, a demo beside a bench) do not meet.
    public static func randomGroup() -> Endpoint {
        Configuration.defaultGroup.with(port: UInt16(20_000 + System.randomUInt64() % 40_000))
    }

    /// Creates `folder` if missing; no agent starts yet.
    public init(binary: String, folder: String, group: Endpoint = LoopbackCluster.randomGroup(), logLevel: String = "warning") {
        self.binary = binary
        self.folder = folder
        self.group = group
        self.logLevel = logLevel
        try? System.makeDirectory(folder)
    }

    deinit { stopAll() }

    /// Where agent `name` writes its event log.
    public func eventLog(_ name: String) -> String { "\(folder)/\(name).events" }

    /// Where its stderr (its log) goes.
    public func logFile(_ name: String) -> String { "\(folder)/\(name).log" }

    /// `starling agent` arguments for agent `name`; `extra` follows (and may add flags).
    public func arguments(_ name: String, _ extra: [String] = []) -> [String] {
        // --interface lo: a flag wins over a STARLING_INTERFACE the runner may have set.
        ["agent", "--name", name, "--interface", "lo", "--group", group.description, "--log-level", logLevel, "--event-log", eventLog(name)] + extra
    }

    /// Starts agent `name`; its stderr goes to ``logFile(_:)`` unless `stderr` names another file.
    @discardableResult
    public func start(_ name: String, _ extra: [String] = [], stderr: String? = nil) throws(Errno) -> ChildProcess {
        let child = try ChildProcess(binary, arguments(name, extra), stderr: stderr ?? logFile(name))
        children[name] = child
        return child
    }

    /// Runs agent `name` to completion with its output captured (a start that must fail); it is
    /// not one of ``children``.
    public func run(_ name: String, _ extra: [String] = []) throws(Errno) -> ChildProcess.Finished {
        try ChildProcess.run(binary, arguments(name, extra))
    }

    /// kill -9, and reaped.
    public func kill(_ name: String) {
        children[name]?.kill()
        children[name]?.wait()
        children[name] = nil
    }

    /// SIGTERM (the agent says GOODBYE) and wait for the exit; kill -9 after 3 s.
    public func stop(_ name: String) {
        children[name]?.stop()
        children[name] = nil
    }

    /// ``stop(_:)`` for every agent, signalled all at once.
    public func stopAll() {
        for child in children.values { child.signal() }
        for child in children.values where child.wait(timeoutMillis: 3_000) == nil { child.kill(); child.wait() }
        children.removeAll()
    }

    /// ``kill(_:)`` for every agent.
    public func killAll() {
        for child in children.values { child.kill(); child.wait() }
        children.removeAll()
    }
}
