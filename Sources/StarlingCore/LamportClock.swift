/// A 64-bit Lamport clock (Protocol.md §4): tick before every send, adjust on every receive.
public struct LamportClock: Sendable, Equatable {
    public private(set) var value: UInt64

    public init(value: UInt64 = 0) {
        self.value = value
    }

    /// Advances for a send and returns the stamp to put on the datagram.
    public mutating func tick() -> UInt64 {
        value &+= 1
        return value
    }

    /// `max(local, received) + 1`, applied to every accepted datagram.
    public mutating func adjust(to received: UInt64) {
        value = max(value, received) &+ 1
    }
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

/// SplitMix64: a small, seedable generator so that simulations replay exactly.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
