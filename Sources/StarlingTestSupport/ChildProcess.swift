import StarlingPOSIX

/// A child process started by the demo, the tests or the benchmark harness.
public final class ChildProcess: Sendable {
    public let pid: Int32

    /// Starts `path` with `args`; stdin is /dev/null, stdout and stderr go to files if given.
    /// `environment` is added to this process's (a test's fake NOTIFY_SOCKET).
    public init(_ path: String, _ args: [String], stdout: String? = nil, stderr: String? = nil,
                environment: [String: String] = [:]) throws(Errno) {
        pid = try System.spawn(path, args, stdout: stdout, stderr: stderr, environment: environment)
    }

    /// Sends a signal (SIGTERM by default); a process already gone is not an error.
    public func signal(_ signal: Int32 = Signals.terminate) { System.signal(pid, signal) }

    public func kill() { signal(Signals.kill) }

    /// Waits for the exit and returns the exit code (128+signal when killed), or nil if it is still
    /// running after `timeoutMillis`. It polls every `pollMillis`.
    @discardableResult
    public func wait(timeoutMillis: UInt64 = 10_000, pollMillis: UInt64 = 5) -> Int32? {
        waitForExit(timeoutMillis: timeoutMillis, pollMillis: pollMillis)?.code
    }

    /// ``wait(timeoutMillis:)`` that also says which signal ended it (0 when it exited); code -1
    /// when it cannot be waited for (already reaped).
    public func waitForExit(timeoutMillis: UInt64, pollMillis: UInt64 = 5) -> (code: Int32, signal: Int32)? {
        var waited: UInt64 = 0
        let step = max(pollMillis, 1)
        while true {
            do {
                if let exit = try System.reap(pid) { return exit }
            } catch {
                return (-1, 0)
            }
            if waited >= timeoutMillis { return nil }
            System.sleep(millis: step)
            waited += step
        }
    }

    /// Stops the child: SIGTERM, then SIGKILL if it has not gone within `graceMillis`; how it
    /// ended (nil if not even SIGKILL ended it within 2 s).
    @discardableResult
    public func stop(graceMillis: UInt64 = 3_000) -> (code: Int32, signal: Int32)? {
        signal(Signals.terminate)
        if let exit = waitForExit(timeoutMillis: graceMillis) { return exit }
        kill()
        return waitForExit(timeoutMillis: 2_000)
    }

    /// How a process run to completion ended, and what it wrote.
    public struct Finished: Sendable {
        /// The exit code; 128+signal when a signal ended it.
        public var code: Int32
        /// The signal that ended it; 0 when it exited.
        public var signal: Int32
        public var stdout: String
        public var stderr: String
        /// It still ran after the deadline and was stopped (its code is then the stop's).
        public var timedOut: Bool
    }

    /// Runs `path` to completion, its stdout and stderr through files beside each other in /tmp
    /// (removed afterwards). A run still going after `timeoutMillis` is stopped and says so:
    /// a wrongly accepted flag must not hang the caller on a running agent.
    public static func run(_ path: String, _ args: [String], timeoutMillis: UInt64 = 120_000) throws(Errno) -> Finished {
        let base = "/tmp/starling-run-\(System.processID)-\(System.randomUInt64())"
        let (outPath, errPath) = (base + ".out", base + ".err")
        defer {
            try? System.removeFile(outPath)
            try? System.removeFile(errPath)
        }
        let child = try ChildProcess(path, args, stdout: outPath, stderr: errPath)
        var timedOut = false
        var exit = child.waitForExit(timeoutMillis: timeoutMillis)
        if exit == nil {
            timedOut = true
            exit = child.stop()
        }
        let text = { (path: String) in String(decoding: (try? System.readFile(path)) ?? [], as: UTF8.self) }
        return Finished(code: exit?.code ?? -1, signal: exit?.signal ?? 0, stdout: text(outPath), stderr: text(errPath), timedOut: timedOut)
    }
}
