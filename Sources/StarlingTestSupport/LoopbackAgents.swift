import Starling
import StarlingCore
import StarlingPOSIX

/// Agent processes on loopback, as the tests, `starling demo` and the benchmark start them: one
/// argument list and one way to pick a group, so that a flag added for one is added for all.
/// Every agent gets its own event log and its stderr in a file beside it. Loopback only: the
/// agent's default interface is `lo`, and no caller passes another.
public enum LoopbackAgents {
    /// A group on Starling's default address with a random port in 20,000–59,999, so that
    /// runs at the same time (tests in parallel, a demo beside a bench) do not meet.
    public static func randomGroup() -> Endpoint {
        Endpoint(address: AgentConfiguration.defaultGroup.address, port: UInt16(20_000 + System.randomUInt64() % 40_000))
    }

    /// Where the agent `name` writes its event log in `folder`.
    public static func eventLog(folder: String, name: String) -> String { "\(folder)/\(name).events" }

    /// Where its stderr (its log) goes.
    public static func logFile(folder: String, name: String) -> String { "\(folder)/\(name).log" }

    /// `starling agent` arguments for one loopback agent; `extra` follows (and may add flags).
    public static func arguments(name: String, group: Endpoint, folder: String, logLevel: String = "warning",
                                 extra: [String] = []) -> [String] {
        ["agent", "--name", name, "--group", group.description, "--log-level", logLevel,
         "--event-log", eventLog(folder: folder, name: name)] + extra
    }

    /// Starts one agent from `binary` (the `starling` executable).
    public static func spawn(_ binary: String, name: String, group: Endpoint, folder: String, logLevel: String = "warning",
                             extra: [String] = []) throws(Errno) -> ChildProcess {
        try ChildProcess(binary, arguments(name: name, group: group, folder: folder, logLevel: logLevel, extra: extra),
            stderr: logFile(folder: folder, name: name))
    }
}
