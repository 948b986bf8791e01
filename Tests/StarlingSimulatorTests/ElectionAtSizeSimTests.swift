import Foundation
import StarlingCore
import StarlingSimulator
import XCTest

/// Issue 16, Protocol.md appendix A.2 item 1: an election costs a bounded number of group
/// datagrams whatever the cluster size (joiners are silent; after a leader loss only the
/// electors on the ring start), and every node ends naming the same leader.
final class ElectionAtSizeSimTests: XCTestCase {
    let ms: UInt64 = 1_000_000
    let s: UInt64 = 1_000_000_000

    /// A cluster of `count` nodes converged without loss, then running at `loss` (the cold start
    /// under loss at 1,000 is appendix A.2 item 4's business, not the elections'). `warm`: the
    /// nodes start with their views preloaded (``Simulator/warmStart()``) instead of joining.
    func cluster(_ count: Int, seed: UInt64, loss: Double = 0, quorum: Bool = false, warm: Bool = false) -> Simulator {
        let ms = self.ms
        let sim = Simulator(nodes: count, seed: seed) { config, _ in
            config.pushPullInterval = 30_000 * ms
            if quorum { config.quorum = count }
        }
        sim.checkStamps = count <= 200
        if warm {
            sim.warmStart()
            sim.advance(1)
        } else {
            sim.startAll(spread: 500 * ms)
        }
        XCTAssertNotNil(sim.runUntil(limit: 10 * s, step: 100 * ms) { sim.viewViolations().isEmpty }, "\(sim.viewViolations().prefix(3))")
        sim.conditions = NetworkConditions(loss: loss)
        return sim
    }

    /// An election by `elect`, then a re-election after the leader is crashed: each costs at
    /// most 20 group datagrams and ends with every node naming one leader.
    func electAndReelect(_ sim: Simulator, limit: UInt64, maxDatagrams: UInt64?) {
        let elected = sim.measureElection("jobs", afterTerm: 0, limit: limit) {
            sim.act(7) { peer, now in peer.elect("jobs", now: now) }
        }
        guard let elected else { return XCTFail("no agreement after elect — \(sim.replayHint)") }
        if let maxDatagrams { XCTAssertLessThanOrEqual(elected.groupDatagrams, maxDatagrams, "elect") }
        guard let index = sim.indexOf[elected.leader] else { return XCTFail("leader unknown") }
        let reelected = sim.measureElection("jobs", afterTerm: elected.term, limit: limit) { sim.crash(index) }
        guard let reelected else { return XCTFail("no agreement after the leader crashed — \(sim.replayHint)") }
        if let maxDatagrams { XCTAssertLessThanOrEqual(reelected.groupDatagrams, maxDatagrams, "re-election") }
        XCTAssertNotEqual(reelected.leader, elected.leader)
        XCTAssertTrue(sim.leaderViolations("jobs").isEmpty, "\(sim.leaderViolations("jobs"))")
    }

    /// Issue 16 A.2 item 1 at 200 nodes, in every run.
    func testElectionAtTwoHundredCostsFewGroupDatagrams() {
        let sim = cluster(200, seed: 161)
        electAndReelect(sim, limit: 5 * s, maxDatagrams: 20)
    }

    /// Issue 16 A.2 item 1 at 10 % loss: still one leader everywhere after `elect` and after
    /// the leader's crash.
    func testElectionAtTenPercentLossAgrees() {
        let sim = cluster(100, seed: 162, loss: 0.10)
        electAndReelect(sim, limit: 10 * s, maxDatagrams: nil)
    }

    /// Issue 16 A.2 item 1 at 1,000 nodes, started warm (their cold start is
    /// `LargeSimulationTests`'): on demand, `STARLING_SIM_LARGE=1` (CI sets it, with the core
    /// optimised: about 30 s); the benchmark's `sim-election` scenario reports the same figures.
    func testElectionAtOneThousandCostsFewGroupDatagrams() throws {
        guard ProcessInfo.processInfo.environment["STARLING_SIM_LARGE"] == "1" else {
            throw XCTSkip("1,000-node run is on demand: set STARLING_SIM_LARGE=1 (CI sets it)")
        }
        let sim = cluster(1_000, seed: 163, warm: true)
        electAndReelect(sim, limit: 5 * s, maxDatagrams: 20)
        let lossy = cluster(1_000, seed: 164, loss: 0.10, warm: true)
        electAndReelect(lossy, limit: 10 * s, maxDatagrams: nil)
    }

    /// Issue 16 A.2 item 1 in quorum mode: votes go by unicast, so an election still costs few
    /// group datagrams, and no term ever has two leaders.
    func testQuorumElectionAtSizeHasOneLeaderPerTerm() {
        let sim = cluster(60, seed: 165, quorum: true)
        electAndReelect(sim, limit: 5 * s, maxDatagrams: 20)
        XCTAssertTrue(sim.termViolations("jobs").isEmpty, "\(sim.termViolations("jobs"))")
    }

    /// Issue 16 A.2 item 1: members die and join mid-election. The leader is killed; as soon as
    /// the next term's candidates have sent their CANDIDACY they are killed too (the others hold
    /// only dead candidacies and decide on one of them until they see it dead), and new nodes
    /// join meanwhile. Every node ends naming one live leader.
    func testAgreesWhenCandidatesDieAndMembersJoinMidElection() {
        let sim = cluster(80, seed: 166)
        sim.act(3) { peer, now in peer.elect("jobs", now: now) }
        XCTAssertNotNil(sim.runUntil(limit: 2 * s) { sim.agreedLeader("jobs") != nil })
        guard let first = sim.agreedLeader("jobs"), let leader = sim.indexOf[first.id] else { return XCTFail("no first leader") }
        sim.crash(leader)
        func candidates() -> [Int] {
            sim.nodes.indices.filter { index in
                let node = sim.nodes[index]
                guard node.isUp, let election = node.peer.elections["jobs"], election.term > first.term else { return false }
                return election.candidates[node.peer.config.id] != nil
            }
        }
        XCTAssertNotNil(sim.runUntil(limit: 5 * s, step: 100_000) { !candidates().isEmpty }, "no candidacy after the leader's crash")
        let killed = candidates()
        for index in killed { sim.crash(index) }
        // Three nodes come back as new members (new ids) while the election runs.
        for index in [leader] + killed.prefix(2) { sim.restart(index, keepState: false) }
        let agreed = sim.runUntil(limit: 15 * s, step: 10 * ms) {
            guard let now = sim.agreedLeader("jobs"), let index = sim.indexOf[now.id] else { return false }
            return sim.nodes[index].isUp && sim.nodes[index].peer.config.id == now.id
        }
        XCTAssertNotNil(agreed, "killed \(killed): \(sim.leaderViolations("jobs")) — \(sim.replayHint)")
    }
}

/// Issue 16 A.2 item 1: quorum mode at 10 % loss. A voter that misses the winner's LEADER must
/// not start a new term that deposes it (at 60 voters someone nearly always misses it).
final class QuorumElectionLossTests: XCTestCase {
    func testQuorumAtTenPercentLossSettlesOnOneLeader() {
        let ms: UInt64 = 1_000_000
        let sim = Simulator(nodes: 60, seed: 167, conditions: NetworkConditions(loss: 0.10)) { config, _ in
            config.pushPullInterval = 30_000 * ms
            config.quorum = 60
        }
        sim.startAll(spread: 500 * ms)
        XCTAssertNotNil(sim.runUntil(limit: 10_000 * ms, step: 100 * ms) { sim.viewViolations().isEmpty })
        sim.act(5) { peer, now in peer.elect("q", now: now) }
        XCTAssertNotNil(sim.runUntil(limit: 8_000 * ms, step: 10 * ms) { sim.agreedLeader("q") != nil }, "\(sim.leaderViolations("q")) — \(sim.replayHint)")
        let term = sim.agreedLeader("q")?.term ?? 0
        sim.advance(10_000 * ms)
        let terms = Set(sim.nodes.map { $0.peer.elections["q"]?.term ?? 0 })
        XCTAssertEqual(terms, [term], "the leader was deposed by a voter's retry")
        XCTAssertTrue(sim.termViolations("q").isEmpty, "\(sim.termViolations("q"))")
    }
}
