/// An open-addressing hash index of 32-bit row numbers (linear probing, at most three quarters
/// full, deletion by backward shift): 4 bytes a slot where a `[NodeID: UInt32]` took 20 bytes
/// a bucket and a `[ByteString: NodeID]` 32 (Protocol.md A.2 item 3). The rows hold the keys:
/// each call passes the rows, how a row hashes and whether a row holds the key looked for.
/// Hashes are keyed per process (names by `Hasher`, ids by ``MemberTable``'s keyed mix), so
/// that keys chosen by an outsider cannot pile into one probe chain; nothing iterates the
/// index, so a run does not depend on the seed.
///
/// A tagged index (one entry for every row, so rows are fewer than slots) holds a row in a
/// slot's low bits, as many as the slot count, a power of two, takes, and a tag of its hash's
/// top bits above them: a search passes over a slot whose tag differs without reading its row,
/// which in a large view is a cache miss each (most of a lookup's time in a 10,000-node
/// simulation). An index of fewer entries than rows (names: several rows share one) is not
/// tagged: its slots hold rows as they are.
struct RowIndex: Sendable {
    /// An empty slot: all ones, a row that no table of fewer rows than slots, or than
    /// `UInt32.max`, holds.
    private static let empty = UInt32.max
    private var slots: [UInt32] = []
    private(set) var count = 0
    /// Whether slots carry tags: only for an index with an entry for every row.
    private let tagged: Bool

    /// An index; `tagged` only if it will hold an entry for every row and nothing else.
    init(tagged: Bool) { self.tagged = tagged }

    private var mask: Int { slots.count &- 1 }
    /// Bits of a slot that hold its row.
    private var rowBits: Int { tagged ? slots.count.trailingZeroBitCount : 32 }

    /// The row in `slot`.
    private func row(_ slot: UInt32) -> UInt32 { tagged ? slot & UInt32(truncatingIfNeeded: mask) : slot }

    /// `row` with `hash`'s tag: its top bits, as many as the slot leaves above the row.
    private func encode(_ row: UInt32, hash: Int) -> UInt32 {
        let tagBits = 32 &- rowBits
        guard tagBits > 0 else { return row }
        let tag = UInt32(truncatingIfNeeded: UInt64(UInt(bitPattern: hash)) >> UInt64(64 &- tagBits))
        return tag << UInt32(rowBits) | row
    }

    /// The row that `matches`, looked for from `hash`.
    func find<Row>(_ hash: Int, in rows: [Row], where matches: (Row) -> Bool) -> UInt32? {
        guard !slots.isEmpty else { return nil }
        let tag = encode(0, hash: hash)
        let tagMask = tagged ? ~UInt32(truncatingIfNeeded: mask) : 0
        var slot = hash & mask
        while slots[slot] != Self.empty {
            if slots[slot] & tagMask == tag, matches(rows[Int(row(slots[slot]))]) { return row(slots[slot]) }
            slot = (slot &+ 1) & mask
        }
        return nil
    }

    /// The first slot of `hash`'s probe chain that holds row `row`.
    private func slot(_ hash: Int, holding row: UInt32) -> Int? {
        guard !slots.isEmpty else { return nil }
        var slot = hash & mask
        while slots[slot] != Self.empty {
            if self.row(slots[slot]) == row { return slot }
            slot = (slot &+ 1) & mask
        }
        return nil
    }

    /// Adds `row`, whose key hashes to `hash`; the caller knows no row with its key is in.
    mutating func insert<Row>(_ row: UInt32, hash: Int, in rows: [Row], hashOf: (Row) -> Int) {
        if (count &+ 1) &* 4 > slots.count &* 3 { grow(rows, hashOf) }
        var slot = hash & mask
        while slots[slot] != Self.empty { slot = (slot &+ 1) & mask }
        slots[slot] = encode(row, hash: hash)
        count &+= 1
    }

    /// Points the entry holding row `from` at row `to` (the row moved); `hash` is the hash of
    /// that row's key.
    mutating func move(_ hash: Int, from: UInt32, to: UInt32) {
        if let slot = slot(hash, holding: from) { slots[slot] = encode(to, hash: hash) }
    }

    /// Removes the entry holding `row`, whose key hashed to `hash` when it went in.
    mutating func remove<Row>(_ hash: Int, row: UInt32, in rows: [Row], hashOf: (Row) -> Int) {
        guard var hole = slot(hash, holding: row) else { return }
        slots[hole] = Self.empty
        count &-= 1
        // Entries after the hole in its cluster move back into it unless their home slot lies
        // cyclically in (hole, next]: every entry stays reachable from its home.
        var next = (hole &+ 1) & mask
        while slots[next] != Self.empty {
            let home = hashOf(rows[Int(self.row(slots[next]))]) & mask
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
        let oldMask = tagged ? UInt32(truncatingIfNeeded: mask) : UInt32.max
        slots = Array(repeating: Self.empty, count: Swift.max(16, old.count &* 2))
        // Tags are as wide as the slot count leaves: every entry is tagged afresh.
        for entry in old where entry != Self.empty {
            let row = entry & oldMask
            let hash = hashOf(rows[Int(row)])
            var slot = hash & mask
            while slots[slot] != Self.empty { slot = (slot &+ 1) & mask }
            slots[slot] = encode(row, hash: hash)
        }
    }
}
