/// Sliding replay window per sender (Protocol.md §7.3): the highest sequence seen and a bitmap of
/// the `width` sequences below it.
struct ReplayWindow: Sendable {
    static let width: UInt64 = 256
    var highest: UInt64 = 0
    var seen: [UInt64] = [0, 0, 0, 0]
    /// When this sender was last accepted (to forget the least recent when the table is full).
    var lastUsed: UInt64 = 0

    /// Records `sequence`; false when it is a duplicate or older than the window.
    mutating func accept(_ sequence: UInt64) -> Bool {
        if sequence > highest {
            let shift = sequence - highest
            if shift >= Self.width {
                seen = [0, 0, 0, 0]
            } else {
                for _ in 0..<shift { shiftOne() }
            }
            highest = sequence
            seen[0] |= 1
            return true
        }
        let back = highest - sequence
        guard back < Self.width else { return false }
        let word = Int(back / 64)
        let bit: UInt64 = 1 << (back % 64)
        if seen[word] & bit != 0 { return false }
        seen[word] |= bit
        return true
    }

    private mutating func shiftOne() {
        seen[3] = seen[3] << 1 | seen[2] >> 63
        seen[2] = seen[2] << 1 | seen[1] >> 63
        seen[1] = seen[1] << 1 | seen[0] >> 63
        seen[0] <<= 1
    }
}
