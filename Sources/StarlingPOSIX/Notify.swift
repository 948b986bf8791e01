@preconcurrency import Glibc

// systemd's readiness protocol (sd_notify(3), sd_watchdog_enabled(3)), written by hand: the
// service manager names an AF_UNIX datagram socket in NOTIFY_SOCKET, and the service sends it
// newline-separated `KEY=VALUE` lines (READY=1, STOPPING=1, WATCHDOG=1, STATUS=...). Everything
// read from the environment is treated as hostile: a value that cannot be used is ignored with
// a note for the log, never a trap.

/// An AF_UNIX socket address: a filesystem path (`/run/systemd/notify`) or, written with a
/// leading `@`, a name in Linux's abstract namespace (`@/org/freedesktop/systemd1/notify`).
public struct UnixSocketAddress: Sendable, Equatable, CustomStringConvertible {
    /// As given, `@` included.
    public let text: String

    /// Bytes of `sun_path` (108 on Linux). A path needs one of them for its terminating NUL; an
    /// abstract name uses them all, its `@` becoming the leading NUL.
    public static let capacity = MemoryLayout.size(ofValue: sockaddr_un().sun_path)

    /// Why a text is not a usable address.
    public enum Invalid: Error, Equatable, Sendable, CustomStringConvertible {
        case empty
        /// Neither `/...` nor `@...` (a relative path, `vsock:`, which Starling does not speak).
        case notAbsolute
        case tooLong(bytes: Int, limit: Int)
        case containsNUL

        public var description: String {
            switch self {
            case .empty: "is empty"
            case .notAbsolute: "is neither an absolute path nor an abstract name starting with '@'"
            case .tooLong(let bytes, let limit): "is \(bytes) bytes, more than the \(limit) a socket address holds"
            case .containsNUL: "holds a NUL byte"
            }
        }
    }

    public init(_ text: String) throws(Invalid) {
        let bytes = Array(text.utf8)
        guard let first = bytes.first, bytes.count > (first == UInt8(ascii: "@") ? 1 : 0) else { throw .empty }
        guard first == UInt8(ascii: "/") || first == UInt8(ascii: "@") else { throw .notAbsolute }
        guard !bytes.contains(0) else { throw .containsNUL }
        let limit = first == UInt8(ascii: "@") ? Self.capacity : Self.capacity - 1
        guard bytes.count <= limit else { throw .tooLong(bytes: bytes.count, limit: limit) }
        self.text = text
    }

    public var isAbstract: Bool { text.utf8.first == UInt8(ascii: "@") }

    public var description: String { text }

    /// The kernel's form and its length: a path with its NUL, an abstract name without one
    /// (its length alone ends it, as systemd's own sd_notify does).
    var sockaddr: (sockaddr_un, socklen_t) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(text.utf8)
        if isAbstract { bytes[0] = 0 }
        withUnsafeMutableBytes(of: &address.sun_path) { path in
            for (index, byte) in bytes.enumerated() where index < path.count { path[index] = byte }
        }
        let offset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path) ?? MemoryLayout<sa_family_t>.size
        // init checked that the bytes fit: at most 108, so the sum stays far inside socklen_t.
        return (address, socklen_t(offset + bytes.count + (isAbstract ? 0 : 1)))
    }
}

/// A non-blocking AF_UNIX datagram socket. It owns its descriptor and closes it once, when the
/// last reference goes. The agent sends on an unbound one; tests bind one to play systemd.
public final class UnixDatagramSocket: Sendable {
    public let descriptor: Int32
    /// The bound address; nil for a socket that only sends.
    public let local: UnixSocketAddress?

    private init(descriptor: Int32, local: UnixSocketAddress?) {
        self.descriptor = descriptor
        self.local = local
    }

    deinit {
        Sys.close(descriptor)
        if let local, !local.isAbstract { try? Sys.unlink(local.text) }
    }

    /// An unbound socket, for sending.
    public static func sender() throws(Errno) -> UnixDatagramSocket {
        UnixDatagramSocket(descriptor: try Sys.socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue)), local: nil)
    }

    /// A socket bound to `address` (a path is created, and removed when the socket goes).
    public static func bound(to address: UnixSocketAddress) throws(Errno) -> UnixDatagramSocket {
        let fd = try Sys.socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue))
        let (raw, length) = address.sockaddr
        do throws(Errno) {
            try Sys.bind(fd, raw, length: length)
        } catch {
            Sys.close(fd)
            throw Errno(error.rawValue, "bind \(address)")
        }
        return UnixDatagramSocket(descriptor: fd, local: address)
    }

    /// Sends one datagram. Returns false when the receiver's queue is full (it is dropped).
    @discardableResult
    public func send(_ bytes: [UInt8], to destination: UnixSocketAddress) throws(Errno) -> Bool {
        let (raw, length) = destination.sockaddr
        return try Sys.typed { try bytes.withUnsafeBytes { try Sys.sendto(descriptor, $0, raw, length: length) } }
    }

    /// The next waiting datagram, cut to `maxBytes`; nil when none is waiting.
    public func receive(maxBytes: Int = 4_096) throws(Errno) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: max(1, maxBytes))
        let count = try Sys.typed { try buffer.withUnsafeMutableBytes { try Sys.recv(descriptor, $0) } }
        guard let count else { return nil }
        return Array(buffer.prefix(max(0, min(count, buffer.count))))
    }
}

/// What systemd asked of this process through its environment, read once at start.
public struct SystemdNotify: Sendable, Equatable {
    /// Where to send state changes (NOTIFY_SOCKET); nil when unset or unusable.
    public var socket: UnixSocketAddress?
    /// Nanoseconds between two `WATCHDOG=1`: half of WATCHDOG_USEC (systemd's advice), at most
    /// an hour (feeding more often than asked is harmless). nil: no watchdog for this process.
    public var watchdogInterval: UInt64?
    /// Values that were set but ignored, one line each, for the log.
    public var ignored: [String] = []

    /// Shorter timeouts than this are refused: the loop's timers have millisecond resolution.
    public static let minimumWatchdogMicros: UInt64 = 1_000
    /// Longer intervals are shortened to this.
    public static let maximumIntervalMicros: UInt64 = 3_600_000_000

    /// Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID through `environment` (a lookup, so
    /// tests pass a dictionary). The watchdog is this process's only when WATCHDOG_PID is unset
    /// or equals `processID` (a child that inherited the variables must not feed it).
    public init(environment: (String) -> String?, processID: Int32) {
        if let text = environment("NOTIFY_SOCKET") {
            do { socket = try UnixSocketAddress(text) } catch {
                ignored.append("NOTIFY_SOCKET \(Self.shown(text)) \(error): ignored, systemd is not told of readiness")
            }
        }
        guard socket != nil, let text = environment("WATCHDOG_USEC") else { return }
        if let pidText = environment("WATCHDOG_PID") {
            guard let pid = Self.decimal(pidText), pid <= UInt64(Int32.max) else {
                ignored.append("WATCHDOG_PID \(Self.shown(pidText)) is not a process id: the watchdog is not fed")
                return
            }
            guard pid == UInt64(max(0, processID)) else { return }  // another process's watchdog: not ours, not an error
        }
        guard let micros = Self.decimal(text) else {
            ignored.append("WATCHDOG_USEC \(Self.shown(text)) is not a number of microseconds below 2^64: the watchdog is not fed")
            return
        }
        if micros == 0 || micros == .max {
            // systemd's own readers treat 0 and USEC_INFINITY as "no watchdog".
            ignored.append("WATCHDOG_USEC \(micros) means no watchdog: ignored")
        } else if micros < Self.minimumWatchdogMicros {
            ignored.append("WATCHDOG_USEC \(micros) is below \(Self.minimumWatchdogMicros) µs, shorter than the loop can keep: ignored")
        } else {
            watchdogInterval = min(micros / 2, Self.maximumIntervalMicros) * 1_000
        }
    }

    /// The process's own environment.
    public static func fromProcess() -> SystemdNotify {
        SystemdNotify(environment: System.environment, processID: System.processID)
    }

    /// Plain decimal digits only (no sign, no spaces), nil past UInt64.
    static func decimal(_ text: String) -> UInt64? {
        guard !text.isEmpty, text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return nil }
        return UInt64(text)
    }

    /// A value quoted for a log line, cut to 64 characters (the logger escapes what is left).
    static func shown(_ text: String) -> String {
        text.count > 64 ? "'\(text.prefix(64))…'" : "'\(text)'"
    }

    /// One notification: `KEY=VALUE` lines. Control characters in values become spaces, so a
    /// value can never start a line (a field) of its own.
    public static func datagram(_ fields: [(key: String, value: String)]) -> [UInt8] {
        var out: [UInt8] = []
        for (index, field) in fields.enumerated() {
            if index > 0 { out.append(UInt8(ascii: "\n")) }
            out.append(contentsOf: field.key.utf8)
            out.append(UInt8(ascii: "="))
            out.append(contentsOf: field.value.utf8.map { $0 < 0x20 || $0 == 0x7f ? UInt8(ascii: " ") : $0 })
        }
        return out
    }
}
