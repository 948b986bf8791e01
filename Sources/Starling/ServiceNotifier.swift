import StarlingCore
import StarlingPOSIX
import Synchronization

/// Tells systemd how the agent is doing, for a unit with `Type=notify` (issue 20, Install):
/// `READY=1` once the agent has synced (or found itself alone), `STOPPING=1` when it begins to
/// shut down, and `WATCHDOG=1` every half WATCHDOG_USEC. The watchdog is fed from the agent's
/// loop, after its timers and housekeeping, never from a thread of its own: a loop that stalls
/// stops feeding it, and systemd restarts the agent. Nothing here is fatal: an unusable
/// environment is logged once at start; of sends that keep failing only the first is logged,
/// and the recovery says how many failed. A READY=1 that could not be sent is tried again at
/// the next loop turn.
final class ServiceNotifier: Sendable {
    let settings: SystemdNotify
    /// nil when the socket could not be created (logged at start).
    private let socket: UnixDatagramSocket?
    private let openError: Errno?
    private let state = Mutex(State())

    private struct State {
        var ready = false
        var stopping = false
        /// Monotonic time the watchdog is next fed; 0 feeds it on the first loop turn.
        var watchdogDueAt: UInt64 = 0
        /// Sends that failed since the last one that worked; only the first is logged.
        var failures: UInt64 = 0
    }

    /// nil when there is nothing to do: NOTIFY_SOCKET unset, and nothing ignored to report.
    init?(_ settings: SystemdNotify) {
        guard settings.socket != nil || !settings.ignored.isEmpty else { return nil }
        self.settings = settings
        var socket: UnixDatagramSocket?
        var openError: Errno?
        if settings.socket != nil {
            do { socket = try UnixDatagramSocket.sender() } catch { openError = error }
        }
        self.socket = socket
        self.openError = openError
    }

    /// The log lines for the start: what was ignored, and what will be sent where.
    var startLines: [(LogLevel, String)] {
        var lines = settings.ignored.map { (LogLevel.warning, "systemd: \($0)") }
        if let target = settings.socket {
            if let openError {
                lines.append((.warning, "systemd: cannot open a socket to NOTIFY_SOCKET \(target) (\(openError)): systemd is not told of readiness"))
            } else {
                let watchdog = settings.watchdogInterval.map { "; WATCHDOG=1 every \($0 / 1_000_000) ms" } ?? ""
                lines.append((.info, "systemd: READY=1 on NOTIFY_SOCKET \(target) once synced\(watchdog)"))
            }
        }
        return lines
    }

    /// One loop turn: feeds the watchdog when due, and sends READY=1 the first time `synced()`
    /// holds (nil while syncing, else the STATUS text). Returns a log line for a failed send.
    func loopTurn(now: UInt64, synced: () -> String?) -> (LogLevel, String)? {
        var fields: [(key: String, value: String)] = []
        let needsStatus = state.withLock { state in
            if let interval = settings.watchdogInterval, now >= state.watchdogDueAt, !state.stopping {
                state.watchdogDueAt = now &+ interval
                fields.append(("WATCHDOG", "1"))
            }
            return !state.ready && !state.stopping
        }
        var readying = false
        if needsStatus, let status = synced() {
            readying = true
            fields = [("READY", "1"), ("STATUS", status)] + fields
        }
        let (sent, line) = send(fields)
        if readying && sent { state.withLock { $0.ready = true } }
        return line
    }

    /// Nanoseconds the loop may sleep before the watchdog is due (at most `timeout`).
    func wait(_ timeout: UInt64, now: UInt64) -> UInt64 {
        guard settings.watchdogInterval != nil else { return timeout }
        let due = state.withLock { $0.watchdogDueAt }
        return min(timeout, due &- min(due, now))
    }

    /// STOPPING=1, once; the watchdog is no longer fed.
    func stopping() -> (LogLevel, String)? {
        let first = state.withLock { state in
            defer { state.stopping = true }
            return !state.stopping
        }
        return first ? send([("STOPPING", "1"), ("STATUS", "stopping")]).line : nil
    }

    /// Sends one notification; true when the kernel took it, and a log line for the first
    /// failure in a row or for the recovery after failures.
    private func send(_ fields: [(key: String, value: String)]) -> (sent: Bool, line: (LogLevel, String)?) {
        guard !fields.isEmpty, let socket, let target = settings.socket else { return (false, nil) }
        var failure: Errno?
        do {
            if try !socket.send(SystemdNotify.datagram(fields), to: target) { failure = Errno(Errno.wouldBlock.rawValue, "sendto") }
        } catch {
            failure = error
        }
        let line = state.withLock { state -> (LogLevel, String)? in
            guard let failure else {
                defer { state.failures = 0 }
                return state.failures > 0 ? (.info, "systemd: notifications reach NOTIFY_SOCKET \(target) again after \(state.failures) failed") : nil
            }
            state.failures = state.failures == .max ? .max : state.failures + 1
            guard state.failures == 1 else { return nil }
            let what = fields.map(\.key).joined(separator: ", ")
            return (.warning, "systemd: sending \(what) to NOTIFY_SOCKET \(target) failed: \(failure) (not fatal; logged once until it works again)")
        }
        return (failure == nil, line)
    }
}

// MARK: Hooks called from the agent's loop (Agent.swift)

extension Agent {
    /// At the start of the loop: logs what the environment asked for and what was ignored.
    func serviceLoopStarted() {
        for (level, line) in notifier?.startLines ?? [] { logger.log(level, line) }
    }

    /// After the timers and housekeeping of each loop turn: the watchdog, and READY=1 once synced.
    func serviceLoopTurn() {
        guard let notifier else { return }
        let line = notifier.loopTurn(now: System.now().nanos) {
            loop.withLock { state in
                guard state.peer.isSynced else { return nil }
                let others = max(0, state.peer.liveCount - 1)
                return others == 0 ? "alone" : "synced with \(others) other node\(others == 1 ? "" : "s")"
            }
        }
        if let (level, text) = line { logger.log(level, text) }
    }

    /// The loop's poll timeout, shortened so that the watchdog is fed on time.
    func serviceWait(_ timeout: UInt64) -> UInt64 {
        notifier?.wait(timeout, now: System.now().nanos) ?? timeout
    }

    /// When the shutdown begins.
    func serviceStopping() {
        if let (level, text) = notifier?.stopping() { logger.log(level, text) }
    }
}
