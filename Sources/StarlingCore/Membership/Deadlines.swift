/// Per-member deadlines (suspicion timeouts, reaping) in a binary min-heap, so that a timer
/// pass costs O(log n) per deadline due instead of a walk over the whole view every period
/// (at 10,000 members that walk was most of a peer's work). An entry is dropped lazily: when a
/// member's deadline changes, the old entry stays in the heap and is skipped when it comes up,
/// because it no longer matches ``current``.
///
/// Deadlines due at the same moment come out by member id, then kind: never in an order left by
/// a rebuild from the dictionary, whose order follows the process's hash seed, so that a
/// simulated run repeats in every process (Protocol.md A.2).
struct Deadlines<Kind: Hashable & Comparable & Sendable>: Sendable {
    struct Entry: Sendable, Equatable {
        let at: UInt64
        let member: NodeID
        let kind: Kind

        /// Earlier first; ties by member id, then kind.
        func precedes(_ other: Entry) -> Bool {
            if at != other.at { return at < other.at }
            if member != other.member { return member < other.member }
            return kind < other.kind
        }
    }

    private var heap: [Entry] = []
    /// The live deadline of each (member, kind); heap entries that disagree are stale.
    private(set) var current: [Key: UInt64] = [:]

    struct Key: Hashable, Sendable {
        let member: NodeID
        let kind: Kind
    }

    var count: Int { current.count }
    /// Heap entries, stale ones included (bounded by 2 · count + 64).
    var stored: Int { heap.count }

    /// When to look again: never later than the earliest live deadline, possibly earlier (an
    /// entry moved later stays in the heap until it comes up).
    var next: UInt64? {
        heap.first.map(\.at)
    }

    /// Sets (or moves) the deadline of `member` for `kind`.
    mutating func set(_ member: NodeID, _ kind: Kind, at: UInt64) {
        current[Key(member: member, kind: kind)] = at
        push(Entry(at: at, member: member, kind: kind))
        // Stale entries could pile up under churn: rebuild when they outnumber live ones.
        if heap.count > 2 * current.count + 64 { rebuild() }
    }

    /// Cancels the deadline of `member` for `kind` (its heap entry goes stale).
    mutating func cancel(_ member: NodeID, _ kind: Kind) {
        current[Key(member: member, kind: kind)] = nil
    }

    /// Removes and returns every live deadline at or before `now`, earliest first.
    mutating func due(now: UInt64) -> [Entry] {
        var out: [Entry] = []
        while let top = heap.first, top.at <= now {
            pop()
            let key = Key(member: top.member, kind: top.kind)
            guard current[key] == top.at else { continue }
            current[key] = nil
            out.append(top)
        }
        // Stale entries at the top would make `next` too early: drop them now.
        while let top = heap.first, current[Key(member: top.member, kind: top.kind)] != top.at { pop() }
        return out
    }

    /// Moves every deadline later by `gap` (this peer's own loop stalled). O(n), and rare.
    mutating func shift(by gap: UInt64) {
        for key in Array(current.keys) { current[key] = current[key].map { $0.saturatingAdd(gap) } }
        rebuild()
    }

    private mutating func rebuild() {
        heap = []
        for (key, at) in current { push(Entry(at: at, member: key.member, kind: key.kind)) }
    }

    private mutating func push(_ entry: Entry) {
        heap.append(entry)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func pop() {
        guard !heap.isEmpty else { return }
        heap.swapAt(0, heap.count - 1)
        heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count, heap[left].precedes(heap[smallest]) { smallest = left }
            if right < heap.count, heap[right].precedes(heap[smallest]) { smallest = right }
            guard smallest != parent else { return }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
