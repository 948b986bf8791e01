/// Splits `items`, in order, into pages of at most `maxPerPage` items whose sizes add up to at
/// most `budget` (an item larger than the budget gets a page of its own). No items, no pages.
/// MEMBERS pages and the argument groups of control requests are cut by it.
func paginate<T>(_ items: [T], budget: Int, maxPerPage: Int, size: (T) -> Int) -> [[T]] {
    var pages: [[T]] = []
    var current: [T] = []
    var packer = PagePacker(budget: budget, maxPerPage: maxPerPage)
    for item in items {
        if packer.opensPage(size(item)), !current.isEmpty {
            pages.append(current)
            current = []
        }
        current.append(item)
    }
    if !current.isEmpty { pages.append(current) }
    return pages
}

/// ``paginate(_:budget:maxPerPage:size:)``'s rule on sizes alone: how many pages a sequence
/// takes can be counted without building them.
struct PagePacker {
    let budget: Int
    let maxPerPage: Int
    private var used = 0
    private var count = 0

    init(budget: Int, maxPerPage: Int) {
        self.budget = budget
        self.maxPerPage = maxPerPage
    }

    /// Takes an item of `size`; true when it opens a page (the first item always does).
    mutating func opensPage(_ size: Int) -> Bool {
        // Sizes are the encoder's own (a datagram at most): the sum stays far from Int.max.
        let opens = count == 0 || used + size > budget || count >= maxPerPage
        if opens { (used, count) = (0, 0) }
        used += size
        count += 1
        return opens
    }
}
