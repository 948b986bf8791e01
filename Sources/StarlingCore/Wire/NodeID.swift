/// A node id: 16 random bytes chosen at every boot (so it is also the boot id).
/// Ordering is byte-wise on the big-endian wire form, as Protocol.md §4.3 requires.
public struct NodeID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// A fresh id from the given random source.
    public static func random(using rng: inout some RandomNumberGenerator) -> NodeID {
        NodeID(high: rng.next(), low: rng.next())
    }

    public static func < (lhs: NodeID, rhs: NodeID) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }

    /// 32 lowercase hex digits, the form used in logs and JSON.
    public var description: String { Hex.encode(high) + Hex.encode(low) }

    /// The first 8 hex digits: enough to tell peers apart in a table.
    public var short: String { String(description.prefix(8)) }

    /// Parses the 32-hex-digit form (either case); nil for anything else.
    public init?(hex text: String) {
        let digits = text.utf8
        guard digits.count == 32, let high = Hex.decodeUInt64(utf8: digits.prefix(16)),
            let low = Hex.decodeUInt64(utf8: digits.suffix(16))
        else { return nil }
        self.init(high: high, low: low)
    }
}
