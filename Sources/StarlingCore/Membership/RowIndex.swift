/// An open-addressing hash index of 32-bit row numbers (linear probing, at most three quarters
/// full, deletion by backward shift): 4 bytes a slot where a `[NodeID: UInt32]` took 20 bytes
/// a bucket and a `[ByteString: NodeID]` 32 (Protocol.md A.2 item 3). The rows hold the keys:
/// each call passes the rows, how a row hashes and whether a row holds the key looked for.
/// Hashes are keyed per process (names by `Hasher`, ids by ``MemberTable``'s keyed mix), so
/// that keys chosen by an outsider cannot pile into one probe chain; nothing iterates the
/// index, so a run does not depend on the seed.
struct RowIndex: Sendable {
    private static let empty = UInt32.max
    private var slots: [UInt32] = []
    private(set) var count = 0

    private var mask: Int { slots.count &- 1 }

    /// The row that `matches`, looked for from `hash`.
    func find<Row>(_ hash: Int, in rows: [Row], where matches: (Row) -> Bool) -> UInt32? {
        slot(hash) { matches(rows[Int($0)]) }.map { slots[$0] }
    }

    /// The first slot of `hash`'s probe chain whose row `matches`.
    private func slot(_ hash: Int, where matches: (UInt32) -> Bool) -> Int? {
        guard !slots.isEmpty else { return nil }
        var slot = hash & mask
        while slots[slot] != Self.empty {
            if matches(slots[slot]) { return slot }
            slot = (slot &+ 1) & mask
        }
        return nil
    }

    /// Adds `row`, whose key hashes to `hash`; the caller knows no row with its key is in.
    mutating func insert<Row>(_ row: UInt32, hash: Int, in rows: [Row], hashOf: (Row) -> Int) {
        if (count &+ 1) &* 4 > slots.count &* 3 { grow(rows, hashOf) }
        var slot = hash & mask
        while slots[slot] != Self.empty { slot = (slot &+ 1) & mask }
        slots[slot] = row
        count &+= 1
    }

    /// Points the entry holding row `from` at row `to` (the row moved); `hash` is the hash of
    /// that row's key.
    mutating func move(_ hash: Int, from: UInt32, to: UInt32) {
        if let slot = slot(hash, where: { $0 == from }) { slots[slot] = to }
    }

    /// Removes the entry holding `row`, whose key hashed to `hash` when it went in.
    mutating func remove<Row>(_ hash: Int, row: UInt32, in rows: [Row], hashOf: (Row) -> Int) {
        guard var hole = slot(hash, where: { $0 == row }) else { return }
        slots[hole] = Self.empty
        count &-= 1
        // Entries after the hole in its cluster move back into it unless their home slot lies
        // cyclically in (hole, next]: every entry stays reachable from its home.
        var next = (hole &+ 1) & mask
        while slots[next] != Self.empty {
            let home = hashOf(rows[Int(slots[next])]) & mask
            let stays = hole <= next ? (hole < home && home <= next) : (hole < home || home <= next)
            if !stays {
                slots[hole] = slots[next]
                slots[next] = Self.empty
                hole = next
            }
            next = (next &+ 1) & mask
        }
    }

    /// Slots for `count` entries within the load bound, when the index is still empty.
    mutating func reserveCapacity(_ count: Int) {
        guard self.count == 0, count > 0 else { return }
        var size = 16
        while size / 4 * 3 < count, size < 1 << 30 { size &*= 2 }
        if size > slots.count { slots = Array(repeating: Self.empty, count: size) }
    }

    private mutating func grow<Row>(_ rows: [Row], _ hashOf: (Row) -> Int) {
        let old = slots
        slots = Array(repeating: Self.empty, count: Swift.max(16, old.count &* 2))
        for row in old where row != Self.empty {
            var slot = hashOf(rows[Int(row)]) & mask
            while slots[slot] != Self.empty { slot = (slot &+ 1) & mask }
            slots[slot] = row
        }
    }
}
