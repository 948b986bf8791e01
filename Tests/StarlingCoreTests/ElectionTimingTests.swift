@testable import StarlingCore
import XCTest

/// Issue 21: the election's decision window and its quick LEADER repeats follow the round
/// trips and the loss measured on direct PINGs (Protocol.md §6.4), with an injected clock.
final class ElectionTimingTests: XCTestCase {
    let ms = PeerHarness.ms
    let config = PeerConfig(name: "x", id: NodeID(high: 0, low: 9))

    func view(_ paths: PathSummary?) -> MemberView {
        MemberView(members: [:], me: config.id, liveCount: 1, aliveCount: 0, multicast: true, seeds: [], paths: paths)
    }

    func summary(timeout: UInt64, loss: Double) -> PathSummary {
        var path = PathEstimate()
        path.roundTrip.add(timeout / 3)  // first sample: SRTT R, RTTVAR R/2, so SRTT + 4 RTTVAR = 3R
        path.probes = 1_000_000
        // Answered so that the one-way loss comes out at `loss`: (1 − p)² of the PINGs.
        path.answered = UInt32((1 - loss) * (1 - loss) * 1_000_000)
        return PathSummary([path])!
    }

    /// Issue 21: the 90th percentile of SRTT + 4 RTTVAR over the members measured, and the
    /// one-way loss that pooled direct PINGs imply.
    func testPathSummaryTakesThe90thPercentileAndTheOneWayLoss() throws {
        var paths: [PathEstimate] = (1...10).map { rank in
            var path = PathEstimate()
            path.roundTrip.add(UInt64(rank) * ms)
            path.probes = 10
            return path
        }
        for index in paths.indices { paths[index].answered = index < 9 ? 8 : 9 }  // 81 of 100
        paths.append(PathEstimate())  // probed, never answered: no round trip, counts as loss
        paths[10].probes = 0
        let summary = try XCTUnwrap(PathSummary(paths))
        XCTAssertEqual(summary.timeout, 27 * ms, "the 9th of 10 timeouts (3R each)")
        XCTAssertEqual(summary.oneWayLoss, 0.1, accuracy: 1e-9, "19 % of round trips lost is 10 % each way")
        XCTAssertNil(PathSummary([PathEstimate()]), "nothing measured yet")
    }

    /// A loss that began seconds ago counts at its recent share, not diluted by a long quiet
    /// past: 240 probes answered, then 25 at 10 % one-way loss (19 % of round trips lost, 5 of
    /// 25 here). Pooled that is 1.9 % of round trips (3 copies of a change of tags); the recent
    /// share makes it at least 5, as the loss calls for. Then through a peer's own probes.
    func testALossThatBeganLatelyCountsAtItsRecentShare() throws {
        var path = PathEstimate()
        path.roundTrip.add(1 * ms)
        path.probes = 265
        path.answered = 260
        var recent = RecentLoss()
        for probe in 0..<240 { recent.add(unanswered: probe < 0) }
        for probe in 0..<25 { recent.add(unanswered: probe % 5 == 4) }
        XCTAssertEqual(try XCTUnwrap(PathSummary([path])).copiesForDelivery, 3, "pooled alone")
        let summary = try XCTUnwrap(PathSummary([path], recent: recent))
        XCTAssertGreaterThan(recent.share, 0.1)
        XCTAssertGreaterThanOrEqual(summary.copiesForDelivery, 5, "the recent share: at least what 10 % calls for")

        // A peer's own probes feed it: every PING without a direct ACK by the next one.
        var h = PeerHarness()
        h.start()
        _ = h.join(3)
        h.advance(2_000 * ms, silent: [])
        XCTAssertEqual(h.peer.membership.recentLoss.share, 0, "every PING answered")
        h.advance(1_000 * ms, silent: Set(h.fakes.values.map(\.id)))
        // Two probes resolve unanswered in that second (the period stretches with local health).
        XCTAssertGreaterThan(h.peer.membership.recentLoss.share, 0.2, "a second without ACKs: the recent share climbs")
    }

    /// Issue 21: twice the paths' timeout, within 2 … 250 ms; the configured 10 ms before any
    /// member answered.
    func testDecisionWindowFollowsTheRoundTrips() {
        let elections = Elections(config: config)
        XCTAssertEqual(elections.decisionWindow(view(nil)), config.decisionWindow)
        XCTAssertEqual(elections.decisionWindow(view(summary(timeout: 0, loss: 0))), 2 * ms, "floor on a fast LAN")
        XCTAssertEqual(elections.decisionWindow(view(summary(timeout: 6 * ms, loss: 0))), 12 * ms)
        XCTAssertEqual(elections.decisionWindow(view(summary(timeout: 3_000 * ms, loss: 0))), 250 * ms, "ceiling")
        XCTAssertEqual(elections.startBackoff(view(summary(timeout: 6 * ms, loss: 0))), 48 * ms, "4 windows between tiers")
    }

    /// Issue 21: enough quick repeats that a member misses the CANDIDACY, the LEADER and every
    /// repeat with probability ≤ 10⁻⁵ at the measured loss, 1 … 8.
    func testQuickAnnouncesFollowTheLoss() {
        let elections = Elections(config: config)
        XCTAssertEqual(elections.quickAnnounceCount(view(nil)), 3, "10 % assumed before any measure")
        let expected: [(Double, Int)] = [(0, 1), (0.01, 1), (0.05, 2), (0.1, 3), (0.2, 6), (0.3, 8), (0.95, 8)]
        for (loss, count) in expected {
            XCTAssertEqual(elections.quickAnnounceCount(view(summary(timeout: ms, loss: loss))), count, "at \(loss)")
        }
    }

    /// Issue 21: a peer whose members answer its PINGs at once decides a CANDIDACY two
    /// milliseconds after entering the term, not after the configured 10 ms.
    func testMeasuredPathsShortenTheWindow() throws {
        var h = PeerHarness()
        h.start()
        let low = h.join(1, high: 0)[0]
        h.advance(3_000 * ms, silent: [])  // probes answered, housekeeping summed them up
        let paths = try XCTUnwrap(h.peer.membership.pathSummary)
        XCTAssertLessThan(paths.timeout, ms)
        h.receive(.candidacy(Candidacy(term: 4, topic: "t")), from: low, name: "f0", stamp: 7, port: 9100)
        h.advance(2 * ms)
        XCTAssertEqual(h.peer.leader(of: "t").name, "f0", "decided at the 2 ms floor")
    }
}
