/// A 64-bit Lamport clock (Protocol.md §4): tick before every send, adjust on every receive.
///
/// Values never pass ``max`` (2^63 − 1): receivers refuse larger stamps (§4.2), and a clock
/// that reaches the ceiling stays there instead of wrapping to zero, so stamps never go back.
public struct LamportClock: Sendable, Equatable {
    /// The largest stamp: 2^63 − 1, so that every stamp is also a non-negative Int64 in JSON.
    public static let max: UInt64 = UInt64(Int64.max)

    public private(set) var value: UInt64

    /// A clock at `value`, lowered to ``max`` if above it (a loaded state file).
    public init(value: UInt64 = 0) {
        self.value = Swift.min(value, Self.max)
    }

    /// Advances for a send and returns the stamp to put on the datagram.
    public mutating func tick() -> UInt64 {
        if value < Self.max { value += 1 }
        return value
    }

    /// `max(local, received) + 1`, applied to every accepted datagram; saturates at ``max``.
    public mutating func adjust(to received: UInt64) {
        let highest = Swift.max(value, Swift.min(received, Self.max))
        value = highest < Self.max ? highest + 1 : Self.max
    }

    /// The stamp the next send will carry (for a candidacy that competes with it).
    public var next: UInt64 { value < Self.max ? value + 1 : Self.max }
}

/// The election order (Protocol.md §4.3): lower stamp first, ties broken by node id as bytes.
public struct Stamp: Comparable, Hashable, Sendable {
    public var value: UInt64
    public var node: NodeID

    public init(_ value: UInt64, _ node: NodeID) {
        self.value = value
        self.node = node
    }

    public static func < (lhs: Stamp, rhs: Stamp) -> Bool {
        (lhs.value, lhs.node) < (rhs.value, rhs.node)
    }
}

/// Time as the core sees it, always passed in: a monotonic reading for timers and a wall-clock
/// reading (Unix epoch milliseconds) for revoke times that must mean the same on every host.
public struct Now: Sendable, Equatable {
    /// Monotonic nanoseconds; only differences matter.
    public var nanos: UInt64
    public var wallMillis: UInt64

    public init(nanos: UInt64, wallMillis: UInt64) {
        self.nanos = nanos
        self.wallMillis = wallMillis
    }
}

extension UInt64 {
    /// Milliseconds as the core's nanosecond durations.
    public static func millis(_ value: UInt64) -> UInt64 { value * 1_000_000 }
}
