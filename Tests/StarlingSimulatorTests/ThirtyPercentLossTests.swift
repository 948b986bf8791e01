import StarlingCore
import StarlingSimulator
import XCTest

/// Issue 21: at 30 % loss on every link, an election requested as `starling elect` does and a
/// joiner's pull of the revoked set still complete (completion, not timing: the figures are
/// the bench's `sim-loss`).
final class ThirtyPercentLossTests: XCTestCase {
    let ms: UInt64 = 1_000_000

    func testElectionAndMingleCompleteAtThirtyPercentLoss() {
        let n = 30
        let entries = (0..<5_000).map { RevokedEntry(id: "job-\(100_000 + $0)", revokedAtMillis: 1_800_000_000_000) }
        let sim = Simulator(nodes: n + 1, seed: 30, conditions: NetworkConditions(loss: 0.3),
            revoked: Dictionary(uniqueKeysWithValues: (0..<n).map { ($0, entries) }))
        for index in 0..<n { sim.start(index, at: UInt64(index) * 10 * ms) }
        XCTAssertNotNil(sim.runUntil(limit: 30_000 * ms, step: 100 * ms) { (0..<n).allSatisfy { sim.nodes[$0].peer.liveCount == n } }, sim.replayHint)
        sim.advance(3_000 * ms)
        for round in 0..<3 {
            let topic = "jobs-\(round)"
            var requestID: UInt32 = 0
            sim.act(round) { peer, now in
                let (id, actions) = peer.request("elect", args: [topic], options: RequestOptions(expected: n - 1, deadline: 3_000 * ms), now: now)
                requestID = id
                return actions
            }
            let agreed = sim.runUntil(limit: 5_000 * ms, step: ms) {
                let leaders = Set((0..<n).map { sim.nodes[$0].peer.leader(of: topic).id })
                return leaders.count == 1 && leaders.first! != nil
            }
            XCTAssertNotNil(agreed, "round \(round): every node names one leader — \(sim.replayHint)")
            sim.advance(3_000 * ms)
            let ends = sim.nodes[round].events.compactMap { entry -> RequestEnd? in
                if case .requestFinished(requestID, let reason, _, _) = entry.event { reason } else { nil }
            }
            XCTAssertEqual(ends, [.allReplied], "round \(round): every member answered the elect request — \(sim.replayHint)")
        }
        sim.start(n)
        let synced = sim.runUntil(limit: 10_000 * ms, step: ms) {
            sim.nodes[n].events.contains { if case .synced = $0.event { true } else { false } }
        }
        XCTAssertNotNil(synced, sim.replayHint)
        XCTAssertGreaterThanOrEqual(sim.nodes[n].peer.revoked.count, entries.count, "the joiner holds every id")
    }
}
