import StarlingCore
import StarlingSimulator
import XCTest

/// A cluster under forged traffic from outside (issue 14), in virtual time.
final class HostileLANTests: XCTestCase {
    let ms: UInt64 = 1_000_000
    let s: UInt64 = 1_000_000_000

    /// Issue 14 item 13: a churn of 50,000 distinct forged ANNOUNCEs at 4,000/s made a
    /// 3-agent cluster declare real members dead. With the view bounded and new members
    /// admitted at a bounded rate (and probe helpers picked in O(1)), the real members stay
    /// alive in every view, and each view stays within its bound.
    func testForgedAnnounceChurnCausesNoFalseDeaths() throws {
        let sim = Simulator(nodes: 3, seed: 14) { config, _ in config.limits.members = 4_096 }
        sim.startAll(spread: 20 * ms)
        XCTAssertNotNil(sim.runUntil(limit: 2 * s) { sim.viewViolations().isEmpty })
        let codec = Codec()
        let attacker = Endpoint(address: 0x0A00_0063, port: 5000)
        var rng = SplitMix64(seed: 99)
        let start = sim.now
        for index in 0..<50_000 {
            let header = Header(sequence: 1, stamp: 1, sender: NodeID.random(using: &rng), incarnation: 0,
                replyPort: UInt16(truncatingIfNeeded: index), cluster: "starling", name: "forged-\(index)")
            let bytes = try codec.encode(Message(header: header, payload: .announce(Announcement(memberCount: 1, revoked: .empty))))
            // Multicast: every node hears every forged announce, 4,000 per second.
            for node in 0..<3 { sim.inject(bytes, from: attacker, to: node, at: start + UInt64(index) * 250_000) }
        }
        sim.advance(13 * s)
        XCTAssertEqual(sim.falseDeaths(), [], sim.replayHint)
        for node in sim.nodes {
            XCTAssertLessThanOrEqual(node.peer.members.count, 4_096)
            XCTAssertGreaterThan(node.peer.counters.drops["admission_limited"] ?? 0, 0)
            for other in sim.nodes where other.index != node.index {
                XCTAssertEqual(node.peer.members[other.peer.config.id]?.status, .alive, "node-\(node.index) about node-\(other.index)")
            }
        }
        XCTAssertEqual(sim.encodeViolations(), [])
    }
}
