@preconcurrency import Glibc

/// Waits on a few descriptors: the heart of the event loop.
public enum Poller {
    /// Blocks until one of `descriptors` is readable or `timeoutNanos` passes (rounded up to whole
    /// milliseconds, so the loop never spins on a sub-millisecond remainder). Returns the readable
    /// ones; empty on timeout or signal interruption.
    public static func wait(_ descriptors: [Int32], timeoutNanos: UInt64?) throws(Errno) -> [Int32] {
        var fds = descriptors.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        let timeout: Int32 = timeoutNanos.map { Int32(clamping: ($0 + 999_999) / 1_000_000) } ?? -1
        let ready = try Sys.poll(&fds, timeoutMillis: timeout)
        guard ready > 0 else { return [] }
        return fds.filter { $0.revents & Int16(POLLIN | POLLERR | POLLHUP) != 0 }.map(\.fd)
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

    /// Routes SIGINT and SIGTERM into this pipe (for the foreground `starling agent`).
    public func routeTerminationSignals() throws(Errno) {
        try Sys.routeSignals([SIGINT, SIGTERM], toPipe: writeEnd)
    }
}

/// Runs work on a new detached thread.
public func startThread(_ body: @escaping @Sendable () -> Void) throws(Errno) {
    try Sys.thread(body)
}
