/// A peer's view of the other members: the rows in one dense array, found through one map from
/// id to a 32-bit row number (Protocol.md A.2 item 3). A `[NodeID: Member]` kept 16 + 88 bytes
/// per bucket at load 0.5–0.75 (~229 bytes per member); here a member costs its 88-byte row
/// (the array grows by an eighth, not twice) and 20 bytes per bucket of the map. A removed row
/// is replaced by the last one, so rows have no holes and ``values`` is the array itself.
public struct MemberTable: Sendable, ExpressibleByDictionaryLiteral {
    private var rows: [Member] = []
    private var rowOf: [NodeID: UInt32] = [:]

    public init() {}

    /// A view of these members (tests and views built by hand).
    public init(dictionaryLiteral elements: (NodeID, Member)...) {
        for (id, member) in elements { self[id] = member }
    }

    /// How many members the view holds.
    public var count: Int { rows.count }
    public var isEmpty: Bool { rows.isEmpty }
    /// The members, in no particular order.
    public var values: [Member] { rows }
    /// The members' ids, in the order of ``values``.
    public var keys: [NodeID] { rows.map(\.id) }

    /// The member with this id, if the view holds it; setting nil removes it.
    public internal(set) subscript(id: NodeID) -> Member? {
        get { rowOf[id].map { rows[Int($0)] } }
        set {
            if let newValue {
                if let row = rowOf[id] {
                    rows[Int(row)] = newValue
                } else {
                    // The view is bounded by Limits.members (§6.6), far below UInt32.max.
                    rowOf[id] = UInt32(truncatingIfNeeded: rows.count)
                    if rows.count == rows.capacity { rows.reserveCapacity(rows.count + Swift.max(16, rows.count / 8)) }
                    rows.append(newValue)
                }
            } else if let row = rowOf.removeValue(forKey: id) {
                let index = Int(row)
                let last = rows.removeLast()
                if index < rows.count {
                    rows[index] = last
                    rowOf[last.id] = row
                }
            }
        }
    }

    /// Changes every member in place.
    mutating func modifyEach(_ change: (inout Member) -> Void) {
        for index in rows.indices { change(&rows[index]) }
    }

    /// Changes the member with this id in place, when there is one.
    mutating func modify(_ id: NodeID, _ change: (inout Member) -> Void) {
        guard let row = rowOf[id] else { return }
        change(&rows[Int(row)])
    }
}

extension MemberTable: Sequence {
    /// The members as (id, row) pairs, like the dictionary this table replaced.
    public func makeIterator() -> some IteratorProtocol<(key: NodeID, value: Member)> {
        rows.lazy.map { (key: $0.id, value: $0) }.makeIterator()
    }

    public var underestimatedCount: Int { rows.count }
}
