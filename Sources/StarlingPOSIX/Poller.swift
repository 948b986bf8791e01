@preconcurrency import Glibc
import Synchronization

/// Waits on a few descriptors: the heart of the event loop.
public enum Poller {
    /// Blocks until one of `descriptors` is readable, one of `writing` is writable, or
    /// `timeoutNanos` passes (rounded up to whole milliseconds, so the loop never spins on a
    /// sub-millisecond remainder). Returns the ready ones (an error or hang-up counts as ready:
    /// the next call on it says what happened); empty on timeout or signal interruption.
    public static func wait(_ descriptors: [Int32], writing: [Int32] = [], timeoutNanos: UInt64?) throws(Errno) -> [Int32] {
        var fds = descriptors.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            + writing.map { pollfd(fd: $0, events: Int16(POLLOUT), revents: 0) }
        let timeout: Int32 = timeoutNanos.map { Int32(clamping: $0 / 1_000_000 + ($0 % 1_000_000 == 0 ? 0 : 1)) } ?? -1
        let ready = try Sys.poll(&fds, timeoutMillis: timeout)
        guard ready > 0 else { return [] }
        return fds.filter { $0.revents & Int16(POLLIN | POLLOUT | POLLERR | POLLHUP) != 0 }.map(\.fd)
    }
}

/// A self-pipe that wakes a poller from another thread or from a signal handler.
public final class WakePipe: Sendable {
    public let readEnd: Int32
    public let writeEnd: Int32

    public init() throws(Errno) {
        (readEnd, writeEnd) = try Sys.pipe()
    }

    deinit {
        Sys.close(readEnd)
        Sys.close(writeEnd)
    }

    /// Wakes the poller; a full pipe already means "wake up", so that error is ignored.
    public func wake(_ byte: UInt8 = 0) {
        var byte = byte
        _ = withUnsafeBytes(of: &byte) { try? Sys.write(writeEnd, $0) }
    }

    /// Empties the pipe and returns what was in it (signal numbers, for the signal pipe).
    public func drain() -> [UInt8] {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64)
        while let count = try? Sys.typed({ try buffer.withUnsafeMutableBytes { try Sys.read(readEnd, $0) } }), count > 0 {
            out.append(contentsOf: buffer[0..<count])
        }
        return out
    }
}

/// Signal numbers an agent handles, and routing them into a ``WakePipe``.
public enum Signals {
    public static let interrupt = SIGINT
    public static let terminate = SIGTERM
    public static let hangup = SIGHUP
    public static let quit = SIGQUIT
    public static let user1 = SIGUSR1
    public static let pipe = SIGPIPE
    /// Not handled (it cannot be): what the tests and the benchmark send to end an agent hard.
    public static let kill = SIGKILL

    /// `SIGTERM` for 15, and so on; `signal N` for the others.
    public static func name(_ number: Int32) -> String {
        switch number {
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        case SIGHUP: "SIGHUP"
        case SIGQUIT: "SIGQUIT"
        case SIGUSR1: "SIGUSR1"
        case SIGPIPE: "SIGPIPE"
        default: "signal \(number)"
        }
    }

    /// Routes `signals` into `pipe` (each arrival writes its number as one byte) and ignores
    /// `ignored`, process-wide, until ``Route/restore()``. One route at a time per process.
    public static func route(_ signals: [Int32], to pipe: WakePipe, ignoring ignored: [Int32]) throws(Errno) -> Route {
        Route(saved: try Sys.routeSignals(signals, toPipe: pipe.writeEnd, ignoring: ignored))
    }

    /// The actions a ``route(_:to:ignoring:)`` replaced.
    public final class Route: Sendable {
        private let saved: Mutex<[(Int32, sigaction)]>

        init(saved: [(Int32, sigaction)]) { self.saved = Mutex(saved) }

        /// Puts the previous actions back (once); the pipe gets no more bytes.
        public func restore() {
            let taken = saved.withLock { saved in
                defer { saved = [] }
                return saved
            }
            if !taken.isEmpty { Sys.restoreSignals(taken) }
        }
    }
}

/// Delays between retries of a call that keeps failing (a poll that errors at once would
/// otherwise spin a core): 1 ms, doubling up to `maximumMillis`, back to 1 ms after a success.
public struct Backoff: Sendable, Equatable {
    public let maximumMillis: UInt64
    /// Failures since the last success.
    public private(set) var failures: UInt64 = 0

    public init(maximumMillis: UInt64 = 1_000) {
        self.maximumMillis = maximumMillis
    }

    /// Records a failure and returns how long to wait before trying again.
    public mutating func failed() -> UInt64 {
        failures = failures == .max ? failures : failures + 1
        let shift = min(failures - 1, 20)
        return min(UInt64(1) << shift, maximumMillis)
    }

    public mutating func succeeded() { failures = 0 }
}

/// Runs work on a new detached thread.
public func startThread(_ body: @escaping @Sendable () -> Void) throws(Errno) {
    try Sys.thread(body)
}
