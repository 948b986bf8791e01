extension Sequence {
    /// The `count` smallest elements in order, by a partial selection: O(n·count) instead of a
    /// full sort, for picking a few entries out of a large view on every beat.
    func smallest(_ count: Int, by areInIncreasingOrder: (Element, Element) -> Bool) -> [Element] {
        var picked: [Element] = []
        picked.reserveCapacity(count + 1)
        guard count > 0 else { return picked }
        for item in self {
            if picked.count == count {
                guard let last = picked.last, areInIncreasingOrder(item, last) else { continue }
                picked.removeLast()
            }
            let at = picked.firstIndex { areInIncreasingOrder(item, $0) } ?? picked.endIndex
            picked.insert(item, at: at)
        }
        return picked
    }
}
