@testable import StarlingCore
import XCTest

/// Issue 21: a pull under loss and reordering (Protocol.md §6.3.2). The final page of a burst
/// asks for the rest of the range at once; the burst keeps only its gaps, which a late page
/// fills or the settle timeout asks for again. With an injected clock.
final class PullPipelineTests: XCTestCase {
    let ms = PeerHarness.ms
    let server = NodeID(high: 13, low: 1)

    func joined() throws -> (PeerHarness, PageRequest) {
        var h = PeerHarness()
        h.start()
        let hello = h.peer.sync.mingle.requestID
        h.receive(.helloReply(HelloReply(requestID: hello, memberCount: 1, revoked: SetDigest(count: 5_000, hash: 9), members: [])), from: server, name: "s")
        let first = try XCTUnwrap(pageRequests(h).last)
        h.clearSent()
        return (h, first)
    }

    func page(_ request: UInt32, _ index: UInt8, last: Bool = false, at millis: UInt64) -> RevokedPage {
        RevokedPage(requestID: request, index: index, last: last, entries: [RevokedEntry(id: id(index), revokedAtMillis: millis)])
    }

    /// Ids that sort as their indices do.
    func id(_ index: UInt8) -> String {
        let digits = String(index)
        return "id-" + String(repeating: "0", count: 3 - digits.count) + digits
    }

    func pageRequests(_ h: PeerHarness) -> [PageRequest] {
        h.sentPayloads().compactMap { if case .pageRequest(let request) = $0 { request } else { nil } }
    }

    func testTheFinalPageAsksForTheRestAtOnceAndLatePagesFillTheGaps() throws {
        var (h, first) = try joined()
        let burst = h.peer.config.pageBurst
        let at = h.time.wallMillis
        // The burst's final page overtakes the others.
        h.receive(.page(page(first.requestID, burst - 1, at: at)), from: server, name: "s")
        let next = pageRequests(h)
        XCTAssertEqual(next.map { [$0.cursor, $0.until] }, [[id(burst - 1), ""]], "the rest of the range, at once")
        h.clearSent()
        // A copy of the final page (duplicated, or forged with other ids) asks for nothing more.
        h.receive(.page(page(first.requestID, burst - 1, at: at)), from: server, name: "s")
        h.receive(.page(RevokedPage(requestID: first.requestID, index: burst - 1, last: false, entries: [RevokedEntry(id: "zzz", revokedAtMillis: at)])), from: server, name: "s")
        XCTAssertEqual(pageRequests(h).count, 0)
        for index in 0..<(burst - 1) { h.receive(.page(page(first.requestID, index, at: at)), from: server, name: "s") }
        h.advance(h.peer.config.pageTimeout * 2)
        let again = pageRequests(h).filter { $0.requestID != next[0].requestID && $0.cursor != next[0].cursor }
        XCTAssertEqual(again.count, 0, "late pages are not asked for again: \(again.map { [$0.cursor, $0.until] })")
    }

    func testAGapLeftByTheFinalPageIsAskedForAfterTheSettleTimeout() throws {
        var (h, first) = try joined()
        let burst = h.peer.config.pageBurst
        let at = h.time.wallMillis
        for index in 0..<burst where index != 5 { h.receive(.page(page(first.requestID, index, at: at)), from: server, name: "s") }
        let rest = try XCTUnwrap(pageRequests(h).first)
        XCTAssertEqual(rest.cursor, id(burst - 1))
        h.clearSent()
        h.advance(h.peer.config.pageTimeout)
        // Page 5 never came: only the gap between pages 4 and 6 is asked for (the rest-of-range
        // burst is outstanding too, and settles by the same timeout: its range again).
        let gaps = pageRequests(h).map { [$0.cursor, $0.until] }
        XCTAssertTrue(gaps.contains(["id-004", "id-006"]), "\(gaps)")
    }

    /// Issue 21 (no retry storm): a server that stops answering is asked again after 1, 2, 4 …
    /// settle timeouts, up to the page timeout, until the pull gives up.
    func testASilentServerIsAskedAgainWithBackoff() throws {
        var (h, first) = try joined()
        let at = h.time.wallMillis
        h.receive(.page(page(first.requestID, 0, at: at)), from: server, name: "s")  // a round trip of 0: settle floor 2 ms
        h.clearSent()
        var times: [UInt64] = []
        let start = h.now
        for _ in 0..<400 {
            h.advance(ms)
            if !pageRequests(h).isEmpty { times.append((h.now - start) / ms) }
            h.clearSent()
        }
        XCTAssertEqual(Array(times.prefix(6)), [2, 6, 14, 30, 62, 102], "gaps of 2, 4, 8, 16, 32 ms, then the page timeout (40 ms)")
        XCTAssertLessThanOrEqual(times.count, 12, "then the pull gives up: \(times)")
    }
}
