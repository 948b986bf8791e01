import StarlingCore
import StarlingSimulator
import XCTest

/// Elections under loss must still end with one leader everywhere within a bound.
final class ElectionLossTests: XCTestCase {
    func testElectionsConvergeAtTenPercentLoss() {
        let ms: UInt64 = 1_000_000
        let sim = Simulator(nodes: 30, seed: 31, conditions: NetworkConditions(loss: 0.10))
        sim.startAll(spread: 100 * ms)
        sim.advance(2_000 * ms)
        for round in 0..<6 {
            let topic = "t\(round % 2)"
            for node in 0..<30 where round % 2 == 0 || node % 3 == 0 { sim.act(node) { peer, now in peer.elect(topic, now: now) } }
            let agreed = sim.runUntil(limit: 8_000 * ms, step: 50 * ms) { sim.leaderViolations(topic).isEmpty && sim.nodes[0].peer.leader(of: topic).id != nil }
            XCTAssertNotNil(agreed, "round \(round): \(sim.leaderViolations(topic)) — \(sim.replayHint)")
        }
    }
}
