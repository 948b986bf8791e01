import Starling
import StarlingCore
import XCTest

/// The CLI's side of paging `revoked` (issue 14 item 26), against agents simulated in memory:
/// one that pages as agreed, one from before paging, and forged ones.
final class RevokedPagerTests: XCTestCase {
    /// An agent's answer to `args` per the agreed protocol (or, `legacy`, as agents did before).
    func answer(_ ids: [String], _ args: [String], legacy: Bool = false) -> JSON {
        let sorted = ids.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        let limit = args.first.flatMap { Int($0) } ?? (legacy ? Int.max : 1_000)
        let start = legacy ? 0 : args.count > 1 ? (sorted.firstIndex { args[1].utf8.lexicographicallyPrecedes($0.utf8) } ?? sorted.count) : 0
        let end = min(sorted.count, start + min(limit, sorted.count))
        var fields: [(String, JSON)] = [("name", .string("a")), ("count", .int(sorted.count)),
            ("ids", .array(sorted[start..<end].map { .object([("id", .string($0)), ("revoked_at_ms", .int(1))]) }))]
        if !legacy { fields.append(("more", .bool(end < sorted.count))) }
        return .object(fields)
    }

    /// Runs a pager to the end against `agent`: the ids shown, the requests made, the problem.
    func run(_ pager: inout RevokedPager, _ agent: ([String]) -> JSON) -> (ids: [String], requests: [[String]], problem: String?) {
        var shown: [String] = []
        var requests: [[String]] = []
        while requests.count < 10_000 {
            let args = pager.nextArguments
            requests.append(args)
            let page = pager.take(agent(args))
            shown += page.items.map { $0["id"]?.stringValue ?? "?" }
            if page.step == .finished { return (shown, requests, page.problem) }
        }
        XCTFail("the pager never finished")
        return (shown, requests, nil)
    }

    func testIssue14Item26PagesThroughEveryIdInByteOrder() {
        // NFC and NFD "café" are two ids; byte order puts "cafe\u{301}" first.
        let ids = (0..<1_234).map { "id-\(1_000_000 + $0)" } + ["caf\u{e9}", "cafe\u{301}"]
        var pager = RevokedPager()
        let (shown, requests, problem) = run(&pager) { self.answer(ids, $0) }
        XCTAssertNil(problem)
        XCTAssertEqual(shown, ids.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        XCTAssertEqual(requests.count, 7, "1,236 ids in pages of 200")
        XCTAssertEqual(requests[0], ["200"])
        XCTAssertEqual(requests[1], ["200", shown[199]])
        XCTAssertTrue(requests.allSatisfy { Int($0[0]).map { (1...1_000).contains($0) } == true })
    }

    func testIssue14Item26LimitCapsTheTotal() {
        let ids = (0..<1_000).map { "id-\(1_000 + $0)" }
        var pager = RevokedPager(cap: 450)
        let (shown, requests, _) = run(&pager) { self.answer(ids, $0) }
        XCTAssertEqual(shown.count, 450)
        XCTAssertEqual(requests.map { $0[0] }, ["200", "200", "50"])
        var small = RevokedPager(cap: 3)
        XCTAssertEqual(run(&small) { self.answer(ids, $0) }.ids.count, 3)
        // An agent sending more than asked is cut at the limit.
        var greedy = RevokedPager(cap: 5)
        XCTAssertEqual(run(&greedy) { _ in self.answer(ids, ["1000"]) }.ids.count, 5)
    }

    func testIssue14Item26AgentWithoutPagingStillListsEverything() {
        let ids = (0..<450).map { "id-\(1_000 + $0)" }
        var pager = RevokedPager()
        let (shown, requests, problem) = run(&pager) { self.answer(ids, $0, legacy: true) }
        XCTAssertNil(problem)
        XCTAssertEqual(shown.count, 450, "a missing `more` is false; the first page is re-asked whole")
        XCTAssertEqual(requests, [["200"], []])
        var capped = RevokedPager(cap: 300)
        let result = run(&capped) { self.answer(ids, $0, legacy: true) }
        XCTAssertEqual(result.ids.count, 300)
        XCTAssertEqual(result.requests, [["200"], ["300"]])
        var few = RevokedPager()
        XCTAssertEqual(run(&few) { self.answer(["a", "b"], $0, legacy: true) }.requests.count, 1, "everything in the first page")
    }

    func testIssue14Item26ForgedPagesStopTheListing() throws {
        // `more` without moving past the cursor would loop forever.
        var stuck = RevokedPager()
        let looping = run(&stuck) { _ in (try? JSON.parse("{\"count\":9,\"more\":true,\"ids\":[{\"id\":\"a\"}]}")) ?? .null }
        XCTAssertEqual(looping.ids, ["a"])
        XCTAssertEqual(looping.requests.count, 2)
        XCTAssertNotNil(looping.problem)
        for forged in ["{\"more\":true,\"ids\":[]}", "{\"more\":true,\"ids\":[{\"id\":5}]}", "{\"more\":true,\"ids\":[1]}", "{\"ids\":7}", "null",
                       "{\"count\":1e30,\"ids\":[]}"] {
            var pager = RevokedPager()
            let result = run(&pager) { _ in (try? JSON.parse(forged)) ?? .null }
            XCTAssertLessThanOrEqual(result.requests.count, 2, forged)
            XCTAssertTrue(pager.isFinished, forged)
        }
        // `more` of the wrong type counts as false.
        var typed = RevokedPager()
        XCTAssertEqual(run(&typed) { _ in (try? JSON.parse("{\"more\":\"yes\",\"ids\":[{\"id\":\"a\"}]}")) ?? .null }.requests.count, 1)
    }
}
