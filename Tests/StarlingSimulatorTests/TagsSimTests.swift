import StarlingCore
import StarlingSimulator
import XCTest

/// Issue 18 (member tags, Protocol.md §3.4.1): every view learns every live member's tags, and a
/// change reaches every view — by its multicast at once, and under loss by the members' own
/// PINGs, ACKs and MEMBERS pages. Asserts convergence, not timing.
final class TagsSimTests: XCTestCase {
    let ms: UInt64 = 1_000_000

    static func tags(_ index: Int, generation: Int = 0) -> MemberTags {
        try! MemberTags(["role": "r\(index % 3)", "node": "\(index)", "gen": "\(generation)"])
    }

    /// Nodes whose view lacks some live member's current tags, with what they hold.
    func stale(_ sim: Simulator, expected: (Int) -> MemberTags) -> [String] {
        var out: [String] = []
        for viewer in sim.nodes.indices where sim.nodes[viewer].isUp {
            for other in sim.nodes.indices where other != viewer && sim.nodes[other].isUp {
                let held = sim.nodes[viewer].peer.tags(of: sim.nodes[other].peer.config.id)
                if held != expected(other) { out.append("node \(viewer) holds \(held) for node \(other)") }
            }
        }
        return out
    }

    /// A newcomer's view comes from MEMBERS pages, which list the tags of the members on them:
    /// within a second it holds all 99 others' tags (by probing alone, up to 99 periods: 15 s).
    func testANewcomerHoldsEveryMembersTagsFromItsMembersPages() {
        let sim = Simulator(nodes: 100, seed: 1804) { config, index in config.tags = Self.tags(index) }
        sim.checkStamps = false
        for index in 0..<99 { sim.start(index, at: UInt64(index) * 2 * ms) }
        XCTAssertNotNil(sim.runUntil(limit: 20_000 * ms, step: 100 * ms) { (0..<99).allSatisfy { sim.nodes[$0].peer.liveCount == 99 } }, sim.replayHint)
        sim.start(99)
        sim.advance(1_000 * ms)
        let newcomer = sim.nodes[99].peer
        let missing = (0..<99).filter { newcomer.tags(of: sim.nodes[$0].peer.config.id) != Self.tags($0) }
        XCTAssertEqual(missing, [], "\(sim.replayHint)")
    }

    func testTagsConvergeAndAChangeReachesEveryViewAtTenPercentLoss() {
        for loss in [0.0, 0.10] {
            var generation = [Int: Int]()
            let sim = Simulator(nodes: 30, seed: 1803, conditions: NetworkConditions(loss: loss, duplicate: 0.02)) { config, index in
                config.tags = Self.tags(index)
            }
            sim.startAll(spread: 200 * ms)
            let current: (Int) -> MemberTags = { Self.tags($0, generation: generation[$0] ?? 0) }
            XCTAssertNotNil(sim.runUntil(limit: 20_000 * ms, step: 100 * ms) { sim.viewViolations().isEmpty && self.stale(sim, expected: current).isEmpty },
                "loss \(loss): \(stale(sim, expected: current).prefix(3)) \(sim.replayHint)")
            for round in 1...3 {
                let node = round * 7
                generation[node] = round
                sim.act(node) { peer, now in peer.setTags(Self.tags(node, generation: round), now: now) }
                if loss == 0 {
                    sim.advance(5 * ms)
                    XCTAssertEqual(stale(sim, expected: current), [], "round \(round): the multicast CHANGE reaches every view at once")
                }
                XCTAssertNotNil(sim.runUntil(limit: 15_000 * ms, step: 50 * ms) { self.stale(sim, expected: current).isEmpty },
                    "loss \(loss), round \(round): \(stale(sim, expected: current).prefix(3)) \(sim.replayHint)")
            }
            XCTAssertTrue(sim.violations.isEmpty, "\(sim.violations.prefix(3))")
        }
    }

    /// A member that misses every copy of a change of tags (its links down while they go out)
    /// hears it second-hand within a few periods: every peer that learned the tags piggybacks
    /// the entry with them listed. Before, it waited for the changed member's own PING or ACK
    /// (up to a round of the probe order: 100 periods, 15 s) or a push-pull.
    func testAMemberThatMissedEveryCopyHearsTheTagsSecondHand() {
        let sim = Simulator(nodes: 100, seed: 1806) { config, index in config.tags = Self.tags(index) }
        sim.checkStamps = false
        sim.startAll(spread: 200 * ms)
        XCTAssertNotNil(sim.runUntil(limit: 20_000 * ms, step: 100 * ms) { sim.viewsAgree() }, sim.replayHint)
        let (subject, deaf) = (7, 40)
        let subjectID = sim.nodes[subject].peer.config.id
        sim.degrade(deaf, loss: 1.0)
        sim.act(subject) { peer, now in peer.setTags(Self.tags(subject, generation: 1), now: now) }
        sim.advance(200 * ms)
        XCTAssertEqual(sim.nodes[deaf].peer.tags(of: subjectID), Self.tags(subject), "it missed every copy")
        sim.restore(deaf)
        // Two protocol periods: the periods' PINGs and ACKs carry the entry with its tags listed.
        // (Without the listed tags on PINGs and ACKs it came 620 ms later.)
        XCTAssertNotNil(sim.runUntil(limit: 300 * ms, step: 10 * ms) { sim.nodes[deaf].peer.tags(of: subjectID) == Self.tags(subject, generation: 1) },
            "node \(deaf) still holds the old tags 300 ms after its links came back \(sim.replayHint)")
    }
}
