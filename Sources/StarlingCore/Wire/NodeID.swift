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
    public var description: String { hex(high) + hex(low) }

    /// The first 8 hex digits: enough to tell peers apart in a table.
    public var short: String { String(description.prefix(8)) }

    /// Parses the 32-hex-digit form.
    public init?(hex text: String) {
        guard text.utf8.count == 32, let high = UInt64(text.prefix(16), radix: 16),
            let low = UInt64(text.suffix(16), radix: 16)
        else { return nil }
        self.init(high: high, low: low)
    }

    private func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
