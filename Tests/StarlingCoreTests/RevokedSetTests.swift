import StarlingCore
import XCTest

/// The revoked set's merge, expiry, bound, digests and paging (Protocol.md §3.2, §6.3).
final class RevokedSetTests: XCTestCase {
    let now: UInt64 = 1_800_000_000_000

    func testMergeKeepsTheLaterRevokeTime() {
        var set = RevokedSet()
        XCTAssertTrue(set.insert("a", revokedAtMillis: now, nowMillis: now))
        XCTAssertFalse(set.insert("a", revokedAtMillis: now - 5, nowMillis: now))
        XCTAssertEqual(set.revokedAt("a"), now)
        XCTAssertTrue(set.insert("a", revokedAtMillis: now + 5, nowMillis: now))
        XCTAssertEqual(set.revokedAt("a"), now + 5)
        XCTAssertEqual(set.count, 1)
    }

    func testExpiryUsesWallClockRevokeTime() {
        var set = RevokedSet(maxAgeMillis: 1_000)
        set.insert("old", revokedAtMillis: now - 900, nowMillis: now)
        set.insert("new", revokedAtMillis: now, nowMillis: now)
        XCTAssertFalse(set.insert("ancient", revokedAtMillis: now - 5_000, nowMillis: now), "already expired entries are refused")
        XCTAssertEqual(set.expire(nowMillis: now + 200), 1)
        XCTAssertFalse(set.contains("old"))
        XCTAssertTrue(set.contains("new"))
    }

    func testBoundEvictsOldestFirst() {
        var set = RevokedSet(maxCount: 100)
        for index in 0..<150 { set.insert("id-\(index)", revokedAtMillis: now + UInt64(index), nowMillis: now) }
        XCTAssertLessThanOrEqual(set.count, 100)
        XCTAssertTrue(set.contains("id-149"))
        XCTAssertFalse(set.contains("id-0"))
    }

    func testDigestIsOrderIndependentAndTracksRemovals() {
        var a = RevokedSet()
        var b = RevokedSet()
        for id in ["x", "y", "z"] { a.insert(id, revokedAtMillis: now, nowMillis: now) }
        for id in ["z", "x", "y"] { b.insert(id, revokedAtMillis: now + 1, nowMillis: now) }
        XCTAssertEqual(a.digest, b.digest, "digests cover ids, not times")
        XCTAssertEqual(a.digest.count, 3)
        var c = RevokedSet(maxAgeMillis: 10)
        c.insert("x", revokedAtMillis: now, nowMillis: now)
        c.expire(nowMillis: now + 20)
        XCTAssertEqual(c.digest, .empty)
    }

    /// The digest is kept beside the buckets, not summed from them: through inserts, merges,
    /// eviction at the bound and expiry it stays their sum, and equals a set built afresh.
    func testKeptDigestIsTheSumOfTheBucketsThroughEveryChange() {
        var set = RevokedSet(maxCount: 200, maxAgeMillis: 5_000)
        var rng = SplitMix64(seed: 7)
        func sum(_ buckets: [SetDigest]) -> SetDigest {
            buckets.reduce(.empty) { SetDigest(count: $0.count &+ $1.count, hash: $0.hash &+ $1.hash) }
        }
        for step in 0..<2_000 {
            let at = now + UInt64(step) * 10
            set.insert("id-\(rng.next() % 400)", revokedAtMillis: at - rng.next() % 4_000, nowMillis: at)
            if step % 97 == 0 { set.expire(nowMillis: at) }
            XCTAssertEqual(set.digest, sum(set.bucketDigests), "step \(step)")
        }
        let end = now + 19_990
        set.expire(nowMillis: end)
        XCTAssertEqual(set.digest, sum(set.bucketDigests))
        var fresh = RevokedSet(maxCount: 200, maxAgeMillis: 5_000)
        for entry in set.allEntries() { fresh.insert(entry.id, revokedAtMillis: entry.revokedAtMillis, nowMillis: end) }
        XCTAssertGreaterThan(set.count, 100)
        XCTAssertEqual(set.digest, fresh.digest)
    }

    func testPagingCoversTheRangeInByteOrderWithinBudget() {
        var set = RevokedSet()
        let ids = (0..<500).map { "task-\($0)" }
        for id in ids { set.insert(id, revokedAtMillis: now, nowMillis: now) }
        var cursor = ""
        var seen: [String] = []
        var last = false
        while !last {
            let page = set.page(after: cursor, mask: .max, budget: 300)
            XCTAssertLessThanOrEqual(page.entries.reduce(0) { $0 + 9 + $1.id.utf8.count }, 300)
            seen += page.entries.map(\.id)
            last = page.last
            cursor = page.entries.last?.id ?? cursor
        }
        XCTAssertEqual(seen, ids.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        let bounded = set.page(after: "task-1", until: "task-2", mask: .max, budget: 10_000)
        XCTAssertTrue(bounded.last)
        XCTAssertTrue(bounded.entries.allSatisfy { $0.id > "task-1" && $0.id < "task-2" })
    }

    func testBucketsToPullPicksDifferingBucketsThePeerHasAtLeastAsManyOf() {
        var mine = RevokedSet()
        var theirs = RevokedSet()
        for index in 0..<300 { theirs.insert("t-\(index)", revokedAtMillis: now, nowMillis: now) }
        for index in 0..<150 { mine.insert("t-\(index)", revokedAtMillis: now, nowMillis: now) }
        let mask = mine.bucketsToPull(from: theirs.bucketDigests)
        XCTAssertNotEqual(mask, 0)
        XCTAssertEqual(theirs.bucketsToPull(from: mine.bucketDigests), 0, "the fuller side does not pull from the emptier")
        XCTAssertEqual(mine.bucketsToPull(from: mine.bucketDigests), 0)
    }
}
