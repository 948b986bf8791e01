/// A peer's view of the other members: the rows in one dense array, found by id and by name
/// through two ``RowIndex``es of 32-bit row numbers (Protocol.md A.2 item 3). A member costs
/// its 88-byte row (the array grows by an eighth, not twice) and 4 bytes a slot in each index,
/// where a `[NodeID: UInt32]` cost 20 bytes a bucket and a `[ByteString: NodeID]` of names 32.
/// A removed row is replaced by the last one, so rows have no holes and ``values`` is the array.
public struct MemberTable: Sendable, ExpressibleByDictionaryLiteral {
    private var rows: [Member] = []
    private var byID = RowIndex(tagged: true)
    /// The row stored last under each name (as bytes): a restart (new id, same name) is
    /// spotted without scanning the view.
    private var byName = RowIndex(tagged: false)

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

    /// Room for `count` members without growing (``PeerConfig/expectedMembers``); a table that
    /// holds members already keeps its indices as they are.
    mutating func reserveCapacity(_ count: Int) {
        rows.reserveCapacity(count)
        guard rows.isEmpty else { return }
        byID.reserveCapacity(count)
        byName.reserveCapacity(count)
    }

    /// The keys of ``hash(_:)``: drawn from `Hasher` once per process, so random per process
    /// (and fixed under SWIFT_DETERMINISTIC_HASHING, like every other table's order).
    private static let idKeys: (UInt64, UInt64) = {
        var first = Hasher(), second = Hasher()
        first.combine(UInt64(0x5354_4152_4C49_4E47))
        second.combine(UInt64(0x524F_5749_4E44_4558))
        return (UInt64(UInt(bitPattern: first.finalize())), UInt64(UInt(bitPattern: second.finalize())))
    }()

    /// An id's hash in ``byID``: each half mixed with a key this process alone knows, the two
    /// multiplied to 128 bits and the halves of the product folded (wyhash's mixing step). An
    /// outsider who cannot see the keys cannot choose ids that share a probe chain, as with
    /// `Hasher`, whose three calls per lookup were 5 % of a simulated peer's time (A.2 item 3).
    private static func hash(_ id: NodeID) -> Int {
        let product = (id.high ^ idKeys.0).multipliedFullWidth(by: id.low ^ idKeys.1)
        return Int(truncatingIfNeeded: product.high ^ product.low)
    }
    private static func hash(name: String) -> Int { ByteString(name).hashValue }
    private static func sameName(_ a: String, _ b: String) -> Bool { bytesEqual(a, b) }

    private func row(of id: NodeID) -> UInt32? {
        byID.find(Self.hash(id), in: rows) { $0.id == id }
    }

    /// The member with this id, if the view holds it; setting nil removes it. Setting a member
    /// makes it the one its name leads to (``latest(named:)``).
    public internal(set) subscript(id: NodeID) -> Member? {
        get { row(of: id).map { rows[Int($0)] } }
        set {
            if let newValue {
                if let row = row(of: id) {
                    let oldName = rows[Int(row)].name
                    rows[Int(row)] = newValue
                    nameChanged(row, from: oldName)
                } else {
                    // The view is bounded by Limits.members (§6.6), far below UInt32.max.
                    let row = UInt32(truncatingIfNeeded: rows.count)
                    if rows.count == rows.capacity { rows.reserveCapacity(rows.count + Swift.max(16, rows.count / 8)) }
                    rows.append(newValue)
                    byID.insert(row, hash: Self.hash(id), in: rows) { Self.hash($0.id) }
                    nameChanged(row, from: nil)
                }
            } else if let row = row(of: id) {
                remove(row)
            }
        }
    }

    /// The id of the member stored last under `name` (compared as bytes), while it is in the view.
    func latest(named name: String) -> NodeID? {
        byName.find(Self.hash(name: name), in: rows) { Self.sameName($0.name, name) }.map { rows[Int($0)].id }
    }

    /// Row `row` was just stored (its name was `oldName`, nil for a new row): its name leads to it.
    private mutating func nameChanged(_ row: UInt32, from oldName: String?) {
        let name = rows[Int(row)].name
        if let oldName, !Self.sameName(oldName, name) {
            byName.remove(Self.hash(name: oldName), row: row, in: rows) { Self.hash(name: $0.name) }
        }
        let hash = Self.hash(name: name)
        if let current = byName.find(hash, in: rows, where: { Self.sameName($0.name, name) }) {
            byName.move(hash, from: current, to: row)
        } else {
            byName.insert(row, hash: hash, in: rows) { Self.hash(name: $0.name) }
        }
    }

    private mutating func remove(_ row: UInt32) {
        let member = rows[Int(row)]
        byID.remove(Self.hash(member.id), row: row, in: rows) { Self.hash($0.id) }
        byName.remove(Self.hash(name: member.name), row: row, in: rows) { Self.hash(name: $0.name) }
        // The last row fills the hole; the indices follow it.
        let last = UInt32(truncatingIfNeeded: rows.count - 1)
        if row != last {
            let moved = rows[Int(last)]
            byID.move(Self.hash(moved.id), from: last, to: row)
            byName.move(Self.hash(name: moved.name), from: last, to: row)
            rows[Int(row)] = moved
        }
        rows.removeLast()
    }

    /// Changes every member in place (not their ids or names).
    mutating func modifyEach(_ change: (inout Member) -> Void) {
        for index in rows.indices {
            let (id, name) = (rows[index].id, rows[index].name)
            change(&rows[index])
            rows[index].id = id
            rows[index].name = name
        }
    }

    /// Changes the member with this id in place, its id and name kept, and returns what `change`
    /// returns (nil when no member has this id): one lookup where a read and a ``modify(_:_:)``
    /// took two, on every datagram a peer receives.
    mutating func update<Result>(_ id: NodeID, _ change: (inout Member) -> Result) -> Result? {
        guard let row = row(of: id) else { return nil }
        let name = rows[Int(row)].name
        let result = change(&rows[Int(row)])
        rows[Int(row)].id = id
        rows[Int(row)].name = name
        return result
    }

    /// Changes the member with this id in place, when there is one. A change of its name is
    /// followed by the name index; a change of its id is undone (the id is the key).
    mutating func modify(_ id: NodeID, _ change: (inout Member) -> Void) {
        guard let row = row(of: id) else { return }
        let oldName = rows[Int(row)].name
        change(&rows[Int(row)])
        rows[Int(row)].id = id
        if !Self.sameName(oldName, rows[Int(row)].name) { nameChanged(row, from: oldName) }
    }
}

extension MemberTable: Sequence {
    /// The members as (id, row) pairs, like the dictionary this table replaced.
    public func makeIterator() -> some IteratorProtocol<(key: NodeID, value: Member)> {
        rows.lazy.map { (key: $0.id, value: $0) }.makeIterator()
    }

    public var underestimatedCount: Int { rows.count }
}
