import StarlingCore
import StarlingSimulator
import XCTest

/// Control at size (issue 16, Protocol.md §6.5): a command to every agent of a large cluster
/// completes on the expected count, with the replies spread over the pacing window rather than
/// arriving in one burst.
final class ControlAtSizeTests: XCTestCase {
    func testABroadcastCommandCompletesWithPacedReplies() {
        let ms: UInt64 = 1_000_000
        let count = 300
        let sim = Simulator(nodes: count, seed: 16)
        sim.checkStamps = false
        sim.startAll(spread: 200 * ms)
        XCTAssertNotNil(sim.runUntil(limit: 5_000 * ms, step: 100 * ms) { sim.viewViolations().isEmpty }, "\(sim.viewViolations().prefix(3))")
        let asked = sim.now
        sim.act(0) { peer, now in peer.request("ping", options: RequestOptions(deadline: 5_000 * ms), now: now).1 }
        sim.advance(3_000 * ms)
        let events = sim.nodes[0].events.filter { $0.time >= asked }
        let replies = events.compactMap { entry -> UInt64? in if case .reply = entry.event { entry.time - asked } else { nil } }
        let ends = events.compactMap { entry -> RequestEnd? in if case .requestFinished(_, let reason, _, _) = entry.event { reason } else { nil } }
        XCTAssertEqual(replies.count, count - 1, sim.replayHint)
        XCTAssertEqual(ends, [.allReplied])
        // Unpaced, every reply comes back within two network delays (0.6 ms here).
        let window = 12 * ms // (300 - 64) × 50 µs = 11.8 ms
        XCTAssertGreaterThan(replies.max() ?? 0, window / 2, "spread over the window")
        XCTAssertLessThan(replies.max() ?? .max, window + ms, "and within it")
        let firstMillisecond = replies.filter { $0 < ms }.count
        XCTAssertLessThan(firstMillisecond, 64, "no burst: about 25 a millisecond")
    }
}

/// Issue 21: a member's request to every agent completes under loss, the quick re-asks
/// (Protocol.md §6.5) repairing lost requests and replies; asserts completion, not timing.
final class RequestUnderLossTests: XCTestCase {
    func testRevokesCompleteAtTenAndThirtyPercentLoss() {
        let ms: UInt64 = 1_000_000
        for loss in [0.10, 0.30] {
            let sim = Simulator(nodes: 30, seed: 21, conditions: NetworkConditions(loss: loss))
            sim.startAll(spread: 100 * ms)
            XCTAssertNotNil(sim.runUntil(limit: 10_000 * ms, step: 100 * ms) { sim.viewViolations().isEmpty }, "loss \(loss): \(sim.replayHint)")
            for round in 0..<5 {
                let asked = sim.now
                sim.act(round) { peer, now in peer.revoke(["task-\(round)"], options: RequestOptions(deadline: 3_000 * ms), now: now).1 }
                sim.advance(3_500 * ms)
                let ends = sim.nodes[round].events.filter { $0.time >= asked }.compactMap { entry -> RequestEnd? in
                    if case .requestFinished(_, let reason, _, _) = entry.event { reason } else { nil }
                }
                XCTAssertEqual(ends, [.allReplied], "loss \(loss), round \(round): \(sim.replayHint)")
                XCTAssertTrue(sim.nodes.allSatisfy { $0.peer.revoked.contains("task-\(round)") }, "loss \(loss), round \(round)")
            }
        }
    }
}
