@testable import StarlingCore
import XCTest

/// Round-trip estimates (issue 21, RFC 6298) and the pull's settle timeout that uses them
/// (Protocol.md §6.3.2).
final class RoundTripTests: XCTestCase {
    let ms = PeerHarness.ms
    let server = NodeID(high: 0x5E, low: 1)

    func testSmoothingFollowsRFC6298() {
        var rtt = RoundTrip()
        XCTAssertEqual(rtt.timeout(within: 2 * ms...40 * ms), 40 * ms, "no sample: the upper bound")
        rtt.add(8 * ms)
        XCTAssertEqual(rtt.smoothed, 8 * ms)
        XCTAssertEqual(rtt.variation, 4 * ms)
        XCTAssertEqual(rtt.timeout(within: 2 * ms...40 * ms), 24 * ms, "SRTT + 4 RTTVAR")
        rtt.add(16 * ms)
        XCTAssertEqual(rtt.variation, 5 * ms, "3/4 · 4 + 1/4 · |8 − 16|")
        XCTAssertEqual(rtt.smoothed, 9 * ms, "7/8 · 8 + 1/8 · 16")
        for _ in 0..<64 { rtt.add(100_000) }
        XCTAssertEqual(rtt.timeout(within: 2 * ms...40 * ms), 2 * ms, "a LAN round trip: the floor")
        rtt.add(.max)
        XCTAssertEqual(rtt.timeout(within: 2 * ms...40 * ms), 40 * ms, "saturates, never wraps")
    }

    /// Once a burst's first page has measured the round trip (1 ms), a lost last page settles
    /// the burst a few milliseconds later instead of after the 40 ms page timeout.
    func testALostPageIsAskedForAgainAfterAFewRoundTrips() throws {
        var h = PeerHarness()
        h.start()
        h.receive(.helloReply(HelloReply(requestID: helloID(h), memberCount: 1, revoked: SetDigest(count: 3, hash: 9), members: [])), from: server, name: "s")
        let first = try XCTUnwrap(pageRequests(h).last)
        h.clearSent()
        h.advance(1 * ms)
        h.receive(.page(RevokedPage(requestID: first.requestID, index: 0, last: false, entries: [RevokedEntry(id: "a", revokedAtMillis: h.time.wallMillis)])), from: server, name: "s")
        var waited: UInt64 = 0
        while pageRequests(h).isEmpty, waited < 50 * ms {
            h.advance(1 * ms)
            waited += ms
        }
        XCTAssertEqual(pageRequests(h).map { [$0.cursor, $0.until] }, [["a", ""]])
        XCTAssertEqual(waited, 3 * ms, "SRTT 1 ms + 4 × RTTVAR 0.5 ms")
    }

    /// Before any page came, the first request's loss waits the whole page timeout; the pull
    /// gives up after 8 page timeouts (320 ms) without a page, however short its settle time.
    func testWithoutASampleThePageTimeoutAndTheGiveUpIsTimeBased() throws {
        var h = PeerHarness()
        h.start()
        h.receive(.helloReply(HelloReply(requestID: helloID(h), memberCount: 1, revoked: SetDigest(count: 3, hash: 9), members: [])), from: server, name: "s")
        h.clearSent()
        h.advance(40 * ms - 1)
        XCTAssertTrue(pageRequests(h).isEmpty)
        h.advance(1)
        XCTAssertEqual(pageRequests(h).count, 1, "asked again after the page timeout")
        h.advance(280 * ms - 1)
        XCTAssertNotNil(h.peer.sync.session, "still pulling 320 ms after the last progress minus 1 ns")
        h.advance(1)
        XCTAssertNil(h.peer.sync.session, "given up")
    }

    /// Issue 21: each member's round trip (from its direct ACKs) and the share of direct PINGs it
    /// left unanswered are in `members` and `stats`.
    func testMembersShowTheirRoundTripAndProbeLoss() throws {
        var h = PeerHarness()
        h.start()
        let member = h.join(1)[0]
        var answered = 0
        var ignored = 0
        for _ in 0..<2_000 where answered + ignored < 4 {
            h.advance(1 * ms)
            guard let ping = h.sent.compactMap({ entry -> Ping? in if case .ping(let p) = entry.0.payload, p.target == member { p } else { nil } }).first else { continue }
            h.clearSent()
            if answered + ignored == 2 {
                ignored += 1  // the third PING is lost
                continue
            }
            h.advance(3 * ms)
            h.receive(.ack(Ping(probeID: ping.probeID, target: member, revoked: h.peer.revoked.digest)), from: member, name: "f0", port: h.port(of: member))
            answered += 1
        }
        XCTAssertEqual([answered, ignored], [3, 1])
        let row = try XCTUnwrap(h.peer.memberRows(now: h.time).first { $0["id"]?.stringValue == member.description })
        XCTAssertEqual(row["rtt_ms"]?.numberValue, 3)
        XCTAssertEqual(row["probe_loss"]?.numberValue, 0.25, "one of four direct PINGs unanswered")
        XCTAssertEqual(h.peer.stats(now: h.time)["round_trip"]?["median_rtt_ms"]?.numberValue, 3)
    }

    func helloID(_ h: PeerHarness) -> UInt32 {
        h.sentHellos().first?.requestID ?? 0
    }

    func pageRequests(_ h: PeerHarness) -> [PageRequest] {
        h.sentPayloads().compactMap { if case .pageRequest(let request) = $0 { request } else { nil } }
    }
}
