/// A binary min-heap of timed items; equal times come out in insertion order, so a run is the
/// same event for event whenever the seed is the same.
///
/// The heap holds plain keys (time, order, slot) and the items wait beside it: sifting moves
/// 24-byte values with no reference counting. A batch pushed at once (one multicast's
/// deliveries) waits as one sorted stream with one key in the heap, its next item's, so the
/// heap holds what is in flight per sender rather than per receiver: at 10,000 nodes a
/// multicast put 10,000 keys in it, and sifting a heap of that size missed the cache on most
/// steps. Items come out in exactly the order separate pushes would give.
struct EventQueue<Item> {
    private struct Key {
        var time: UInt64
        var order: UInt64
        /// ≥ 0: an index of `items`; < 0: `~slot` is an index of `streams`.
        var slot: Int
    }

    /// A batch's items sorted by (time, order), and the next one to come out.
    private struct Stream {
        var entries: [(time: UInt64, order: UInt64, item: Item)]
        var next = 0
    }

    private var heap: [Key] = []
    private var items: [Item?] = []
    private var streams: [Stream?] = []
    /// Emptied places of `items` and `streams`, reused by the next push.
    private var freeItems: [Int] = []
    private var freeStreams: [Int] = []
    private var counter: UInt64 = 0

    var isEmpty: Bool { heap.isEmpty }
    /// Keys in the heap: single items, and one per batch not yet drained.
    var count: Int { heap.count }
    var nextTime: UInt64? { heap.first?.time }

    /// The next item without taking it.
    var first: (time: UInt64, item: Item)? {
        guard let top = heap.first else { return nil }
        if top.slot >= 0 { return items[top.slot].map { (top.time, $0) } }
        return streams[~top.slot].map { (top.time, $0.entries[$0.next].item) }
    }

    mutating func push(_ item: Item, at time: UInt64) {
        counter += 1
        insert(Key(time: time, order: counter, slot: Self.place(item, in: &items, reusing: &freeItems)))
    }

    /// Pushes every item of `batch`, in its order, as that many `push` calls would; they wait
    /// as one stream.
    mutating func push(batch: [(item: Item, time: UInt64)]) {
        guard batch.count > 1 else {
            if let only = batch.first { push(only.item, at: only.time) }
            return
        }
        var entries = [(time: UInt64, order: UInt64, item: Item)]()
        entries.reserveCapacity(batch.count)
        for (item, time) in batch {
            counter += 1
            entries.append((time, counter, item))
        }
        entries.sort { ($0.time, $0.order) < ($1.time, $1.order) }
        let index = Self.place(Stream(entries: entries), in: &streams, reusing: &freeStreams)
        insert(Key(time: entries[0].time, order: entries[0].order, slot: ~index))
    }

    mutating func pop() -> (time: UInt64, item: Item)? {
        guard let top = heap.first else { return nil }
        if top.slot >= 0 {
            removeTop()
            guard let item = items[top.slot].take() else { return nil }
            freeItems.append(top.slot)
            return (top.time, item)
        }
        let index = ~top.slot
        // Taken out and put back: a move, not a copy of its entries.
        guard var stream = streams[index].take() else {
            removeTop()
            return nil
        }
        let item = stream.entries[stream.next].item
        stream.next += 1
        if stream.next < stream.entries.count {
            // The stream's next item takes its key's place.
            let next = stream.entries[stream.next]
            streams[index] = stream
            heap[0] = Key(time: next.time, order: next.order, slot: top.slot)
            siftDown(from: 0)
        } else {
            removeTop()
            freeStreams.append(index)
        }
        return (top.time, item)
    }

    /// Stores `value` in an emptied place of `array` if there is one, else at its end.
    private static func place<T>(_ value: T, in array: inout [T?], reusing free: inout [Int]) -> Int {
        if let reused = free.popLast() {
            array[reused] = value
            return reused
        }
        array.append(value)
        return array.count - 1
    }

    private mutating func insert(_ key: Key) {
        heap.append(key)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.less(heap[child], heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func removeTop() {
        heap.swapAt(0, heap.count - 1)
        heap.removeLast()
        siftDown(from: 0)
    }

    private mutating func siftDown(from start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count && Self.less(heap[left], heap[smallest]) { smallest = left }
            if right < heap.count && Self.less(heap[right], heap[smallest]) { smallest = right }
            if smallest == parent { break }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
    }

    private static func less(_ a: Key, _ b: Key) -> Bool {
        (a.time, a.order) < (b.time, b.order)
    }
}
