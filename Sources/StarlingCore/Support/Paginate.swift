/// Splits `items`, in order, into pages of at most `maxPerPage` items whose sizes add up to at
/// most `budget` (an item larger than the budget gets a page of its own). No items, no pages.
/// MEMBERS pages and the argument groups of control requests are cut by it.
func paginate<T>(_ items: [T], budget: Int, maxPerPage: Int, size: (T) -> Int) -> [[T]] {
    var pages: [[T]] = []
    var current: [T] = []
    var used = 0
    for item in items {
        let itemSize = size(item)
        if !current.isEmpty, used + itemSize > budget || current.count >= maxPerPage {
            pages.append(current)
            current = []
            used = 0
        }
        current.append(item)
        used += itemSize
    }
    if !current.isEmpty { pages.append(current) }
    return pages
}
