@preconcurrency import Glibc

/// A POSIX error number, thrown by every shell call that fails.
public struct Errno: Error, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    /// What was being done, for the message (`bind 127.0.0.1:7946`).
    public let operation: String

    public init(_ rawValue: Int32, _ operation: String = "") {
        self.rawValue = rawValue
        self.operation = operation
    }

    public static func == (lhs: Errno, rhs: Errno) -> Bool { lhs.rawValue == rhs.rawValue }
    public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }

    public static let wouldBlock = Errno(EAGAIN)
    public static let addressInUse = Errno(EADDRINUSE)
    public static let noEntry = Errno(ENOENT)
    public static let ioError = Errno(EIO)

    public var description: String {
        let text = String(cString: strerror(rawValue))
        return operation.isEmpty ? text : "\(operation): \(text)"
    }
}
