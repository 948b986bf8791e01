/// Counters exposed by `stats` (Protocol.md §5.2).
public struct Counters: Sendable, Equatable {
    public var datagramsIn: UInt64 = 0
    public var datagramsOut: UInt64 = 0
    public var bytesIn: UInt64 = 0
    public var bytesOut: UInt64 = 0
    public var drops: [String: UInt64] = [:]

    mutating func drop(_ reason: String) { drops[reason, default: 0] &+= 1 }
}
