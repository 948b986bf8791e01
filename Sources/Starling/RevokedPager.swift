import StarlingCore

/// The requester's side of paging `revoked` through one agent (issue 14 item 26): arg0 is the
/// page size, arg1 the cursor (the last id received; the agent answers with the ids strictly
/// after it in byte order); the reply's `more` says whether ids follow. Pure logic, so that tests
/// feed it forged pages. An agent from before paging sends no `more` and ignores the cursor.
package struct RevokedPager {
    /// Ids asked per page: a page stays under ~35 KB of JSON even with 128-byte ids, so an agent
    /// can re-send a lost page from its 64 KiB reply cache and no page floods a socket.
    package static let pageSize = 200

    /// What to do after a page.
    package enum Step: Equatable, Sendable {
        /// Ask for the next page (``nextArguments``).
        case next
        /// The listing is complete (or stopped: see ``Page/problem``).
        case finished
        /// An agent without paging sent its first `limit` ids only: discard them and ask it once
        /// for everything (``nextArguments`` holds no cursor), as before paging.
        case askAll
    }

    /// One page taken: the items to show, in order, and what comes next.
    package struct Page: Sendable {
        package var items: [JSON]
        package var step: Step
        /// Why the listing stopped early (a malformed or inconsistent page), to report with exit 1.
        package var problem: String?
    }

    /// At most this many ids in all (`--limit`); nil for all of them.
    package let cap: Int?
    package private(set) var shown = 0
    /// The last id received: the next page starts after it.
    package private(set) var cursor: String?
    private var askedAll = false
    private var finished = false

    package init(cap: Int? = nil) {
        self.cap = cap.map { max(0, $0) }
    }

    package var isFinished: Bool { finished || remaining == 0 }

    private var remaining: Int { cap.map { $0 > shown ? $0 - shown : 0 } ?? Int.max }

    /// The arguments of the next `revoked` request.
    package var nextArguments: [String] {
        if askedAll { return cap.map { [String($0)] } ?? [] }
        return [String(min(Self.pageSize, remaining))] + (cursor.map { [$0] } ?? [])
    }

    /// Takes the body of the reply to ``nextArguments``.
    package mutating func take(_ body: JSON) -> Page {
        guard !isFinished else { return Page(items: [], step: .finished) }
        guard let ids = body["ids"]?.arrayValue else {
            finished = true
            return Page(items: [], step: .finished, problem: "the reply carries no ids list")
        }
        let more = body["more"]
        if more == nil, !askedAll, cursor == nil, ids.count < remaining,
           let total = body["count"]?.uint64Value, UInt64(ids.count) < total {
            askedAll = true
            return Page(items: [], step: .askAll)
        }
        // After a cursor only ids beyond it count: an agent that repeats itself is not shown twice.
        let after = cursor.map { cursor in ids.filter { $0["id"]?.stringValue.map { cursor.utf8.lexicographicallyPrecedes($0.utf8) } ?? false } }
        let items = Array((after ?? ids).prefix(remaining))
        shown += items.count
        if askedAll || more?.boolValue != true || remaining == 0 {
            finished = true
            return Page(items: items, step: .finished)
        }
        // More promised: the cursor must move forward in byte order, or the listing could loop.
        // (The greatest id, not the last: a page out of order cannot make it go back.)
        let received = items.compactMap { $0["id"]?.stringValue }
        guard let last = received.max(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) else {
            finished = true
            return Page(items: items, step: .finished, problem: "the agent promised more ids but its page does not move past "
                + (cursor.map { "'\(Escape.display($0))'" } ?? "the start"))
        }
        cursor = last
        return Page(items: items, step: .next)
    }
}
