import StarlingCore
import StarlingSimulator
import XCTest

/// Multi-node behaviour of the real core on the simulated network. Every failure prints the seed
/// and the command that replays it.
final class SimulatorTests: XCTestCase {
    let ms: UInt64 = 1_000_000
    let s: UInt64 = 1_000_000_000

    func seed(_ fallback: UInt64) -> UInt64 {
        ProcessInfo.processInfo.environment["STARLING_SIM_SEED"].flatMap { UInt64($0) } ?? fallback
    }

    func assertNone(_ problems: [String], _ sim: Simulator, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssert(problems.isEmpty, "\(what): \(problems.prefix(5)) — replay with \(sim.replayHint)", file: file, line: line)
    }

    func testSameSeedGivesSameRun() {
        func run() -> [String] {
            let sim = Simulator(nodes: 8, seed: 42, conditions: NetworkConditions(loss: 0.1))
            sim.startAll(spread: 50 * ms)
            sim.advance(2 * s)
            sim.crash(3)
            sim.advance(2 * s)
            return sim.nodes.flatMap { node in node.events.map { "\(node.index)@\($0.time):\($0.event.kind)" } }
        }
        let first = run()
        XCTAssertGreaterThan(first.count, 50)
        XCTAssertEqual(first, run())
    }

    func testJoinConvergesAndStampsIncrease() {
        let sim = Simulator(nodes: 20, seed: seed(1))
        sim.startAll(spread: 100 * ms)
        let converged = sim.runUntil(limit: 2 * s) { sim.viewViolations().isEmpty }
        XCTAssertNotNil(converged, "no convergence: \(sim.viewViolations().prefix(3)) — \(sim.replayHint)")
        sim.advance(500 * ms)
        assertNone(sim.violations, sim, "Lamport rule")
        for node in sim.nodes { XCTAssertTrue(node.peer.isSynced, "node-\(node.index) never finished mingle") }
    }

    func testCrashIsDetectedByEveryoneAndCleanStopIsLeft() {
        let sim = Simulator(nodes: 10, seed: seed(2))
        sim.startAll(spread: 50 * ms)
        sim.advance(1 * s)
        sim.crash(4)
        let crashAt = sim.now
        let detected = sim.runUntil(limit: 3 * s, step: 5 * ms) { sim.viewViolations().isEmpty }
        XCTAssertNotNil(detected)
        if let detected { XCTAssertLessThan(detected - crashAt, 1_500 * ms, "detection too slow — \(sim.replayHint)") }
        let deadID = sim.nodes[4].peer.config.id
        for node in sim.nodes where node.isUp { XCTAssertEqual(node.peer.members[deadID]?.status, .dead) }
        sim.stop(7)
        sim.advance(200 * ms)
        let leftID = sim.nodes[7].peer.config.id
        for node in sim.nodes where node.isUp { XCTAssertEqual(node.peer.members[leftID]?.status, .left, "node-\(node.index)") }
        assertNone(sim.falseDeaths(), sim, "false deaths")
    }

    func testNoFalseDeathsAtTenPercentLoss() {
        let sim = Simulator(nodes: 12, seed: seed(3), conditions: NetworkConditions(loss: 0.10))
        sim.startAll(spread: 50 * ms)
        sim.advance(60 * s)
        assertNone(sim.falseDeaths(), sim, "false deaths at 10% loss")
        assertNone(sim.viewViolations(), sim, "views")
    }

    /// Issue 16: the 10-minute soak at 10 % loss in virtual time, at 30 peers, on seeds that
    /// each made one to three false deaths before refutations were multicast twice, changes
    /// piggybacked λ = 4 times and unconfirmed suspicions given a last PING.
    func testTenMinuteSoakAtTenPercentLossHasNoFalseDeath() {
        for seed in [4, 9] as [UInt64] {
            let sim = Simulator(nodes: 30, seed: seed, conditions: NetworkConditions(loss: 0.10))
            sim.checkStamps = false
            sim.startAll(spread: 500 * ms)
            sim.advance(600 * s)
            assertNone(sim.falseDeaths(), sim, "false deaths in 10 minutes at 10% loss")
        }
    }

    func testPausedNodeDoesNotBlameOthersAndIsNotBuried() {
        let sim = Simulator(nodes: 6, seed: seed(4))
        sim.startAll()
        sim.advance(1 * s)
        sim.pause(2, for: 3 * s)
        sim.advance(3 * s)
        // The paused node was silent: others may suspect or bury it, but once it runs again it
        // must not bury the others for its own lateness, and it must come back as alive.
        let others = sim.nodes.indices.filter { $0 != 2 }.map { sim.nodes[$0].peer.config.id }
        sim.advance(50 * ms)
        let pausedVerdicts = sim.nodes[2].events.filter { if case .statusChanged(_, let id, _, .dead) = $0.event { return others.contains(id) } else { return false } }
        XCTAssertTrue(pausedVerdicts.isEmpty, "the stalled node buried its peers: \(pausedVerdicts.map(\.event)) — \(sim.replayHint)")
        XCTAssertNotNil(sim.runUntil(limit: 3 * s) { sim.viewViolations().isEmpty }, "\(sim.viewViolations()) — \(sim.replayHint)")
    }

    func testRestartWithNewBootIDReplacesOldEntry() {
        let sim = Simulator(nodes: 5, seed: seed(5))
        sim.startAll()
        sim.advance(1 * s)
        let oldID = sim.nodes[1].peer.config.id
        sim.crash(1)
        sim.advance(100 * ms)
        sim.restart(1, keepState: true)
        XCTAssertNotNil(sim.runUntil(limit: 2 * s) { sim.viewViolations().isEmpty }, "\(sim.viewViolations())")
        for node in sim.nodes where node.index != 1 { XCTAssertNil(node.peer.members[oldID], "node-\(node.index) kept the old boot id") }
    }

    func testPartitionHealsAndViewsMerge() {
        let sim = Simulator(nodes: 8, seed: seed(6))
        sim.startAll()
        sim.advance(1 * s)
        sim.split([[0, 1, 2, 3], [4, 5, 6, 7]])
        // A member is probed within 2n periods (2.1 s among 8, §6.1.5: just probed before the
        // split, it may come last in the next round), then suspected, confirmed by witnesses
        // and given its last chance (§6.1.6): 3 s was met only by the random draws of the
        // day; which draws changed with the end of ANNOUNCE repeats once answered.
        XCTAssertNotNil(sim.runUntil(limit: 5 * s) { sim.viewViolations().isEmpty }, "sides never settled: \(sim.viewViolations())")
        sim.heal()
        XCTAssertNotNil(sim.runUntil(limit: 10 * s) { sim.viewViolations().isEmpty }, "no merge after heal: \(sim.viewViolations()) — \(sim.replayHint)")
    }

    func testRevokeReachesEveryoneAndAntiEntropyRepairsLoss() {
        let sim = Simulator(nodes: 10, seed: seed(7), conditions: NetworkConditions(loss: 0.3))
        sim.startAll()
        sim.advance(2 * s)
        sim.act(0) { peer, now in peer.revoke((0..<200).map { "task-\($0)" }, now: now).1 }
        let healed = sim.runUntil(limit: 10 * s) { sim.revokedViolations().isEmpty && sim.nodes.allSatisfy { $0.peer.revoked.count == 200 } }
        XCTAssertNotNil(healed, "revoked sets never converged: \(sim.revokedViolations()) — \(sim.replayHint)")
    }

    func testJoinerPullsLargeSetFromOneServer() {
        let sim = Simulator(nodes: 6, seed: seed(8), conditions: NetworkConditions(loss: 0.1))
        sim.start(0)
        sim.advance(300 * ms)
        sim.act(0) { peer, now in peer.revoke((0..<5_000).map { "00000000-0000-4000-8000-\(String(100_000_000_000 + $0))" }, now: now).1 }
        for index in 1..<5 { sim.start(index) }
        sim.advance(3 * s)
        XCTAssertTrue(sim.nodes.prefix(5).allSatisfy { $0.peer.revoked.count == 5_000 }, "\(sim.nodes.map { $0.peer.revoked.count }) — \(sim.replayHint)")
        let before = sim.bytesByType[MessageType.page.rawValue] ?? 0
        sim.start(5)
        XCTAssertNotNil(sim.runUntil(limit: 3 * s) { sim.nodes[5].peer.revoked.count == 5_000 && sim.nodes[5].peer.isSynced }, "joiner has \(sim.nodes[5].peer.revoked.count) — \(sim.replayHint)")
        sim.advance(1 * s)
        let served = (sim.bytesByType[MessageType.page.rawValue] ?? 0) - before
        // About one copy of the set (~45 bytes an id; bursts resent at 10 % loss), not one per
        // neighbour (five).
        XCTAssertGreaterThan(served, 5_000 * 45 / 2)
        XCTAssertLessThan(served, 5_000 * 45 * 3, "neighbours sent \(served) bytes of PAGEs")
    }

    func testElectionAgreesAndSurvivesLeaderCrash() {
        let sim = Simulator(nodes: 7, seed: seed(9))
        sim.startAll()
        sim.advance(1 * s)
        sim.act(3) { peer, now in peer.elect("jobs", now: now) }
        XCTAssertNotNil(sim.runUntil(limit: 2 * s) { sim.leaderViolations("jobs").isEmpty && sim.nodes[0].peer.leader(of: "jobs").id != nil })
        let leaderID = sim.nodes[0].peer.leader(of: "jobs").id!
        // The winner holds the lowest (stamp, id) of the term's candidacies.
        let election = sim.nodes[0].peer.elections["jobs"]!
        XCTAssertEqual(election.candidates.map { Stamp($0.value, $0.key) }.min()?.node, leaderID)
        sim.crash(sim.indexOf[leaderID]!)
        let ok = sim.runUntil(limit: 3 * s) {
            sim.leaderViolations("jobs").isEmpty && sim.nodes.first(where: \.isUp)!.peer.leader(of: "jobs").id.map { $0 != leaderID } == true
        }
        XCTAssertNotNil(ok, "no new leader: \(sim.leaderViolations("jobs")) — \(sim.replayHint)")
    }

    func testOneMemberElectsItselfAtOnce() {
        let sim = Simulator(nodes: 1, seed: seed(10))
        sim.startAll()
        sim.advance(400 * ms)
        sim.act(0) { peer, now in peer.elect("solo", now: now) }
        XCTAssertEqual(sim.nodes[0].peer.leader(of: "solo").id, sim.nodes[0].peer.config.id)
    }

    func testQuorumMinorityRejoinsTheLeaderSoonAfterALongPartition() {
        // A minority without quorum retries at growing intervals (up to 64 s), each try a new
        // term: after a long partition its term is past the majority leader's, whose LEADER it
        // ignores. Regaining a majority, it must elect at once, not wait out its backoff (found
        // by the netns LAN test: 'one leader per topic again' failed once in 10 s).
        let sim = Simulator(nodes: 5, seed: seed(12)) { config, _ in config.quorum = 5 }
        sim.startAll()
        sim.advance(1 * s)
        sim.act(2) { peer, now in peer.elect("q", now: now) }
        sim.advance(2 * s)
        sim.split([[0, 1], [2, 3, 4]])
        sim.advance(40 * s)
        XCTAssertNil(sim.nodes[0].peer.leader(of: "q").id, "minority kept a leader")
        XCTAssertGreaterThan(sim.nodes[0].peer.elections["q"]?.term ?? 0, sim.nodes[2].peer.elections["q"]?.term ?? 0,
            "the minority's terms ran ahead (the case under test)")
        sim.heal()
        let agreed = sim.runUntil(limit: 6 * s) {
            let leaders = Set(sim.nodes.map { $0.peer.leader(of: "q").id })
            return leaders.count == 1 && leaders.first! != nil
        }
        XCTAssertNotNil(agreed, "\(sim.nodes.map { ($0.peer.leader(of: "q").name ?? "-", $0.peer.elections["q"]?.term ?? 0) }) — \(sim.replayHint)")
        assertNone(sim.termViolations("q"), sim, "two leaders in one term")
    }

    func testQuorumMinorityHasNoLeader() {
        let sim = Simulator(nodes: 5, seed: seed(11)) { config, _ in config.quorum = 5 }
        sim.startAll()
        sim.advance(1 * s)
        sim.split([[0, 1], [2, 3, 4]])
        sim.advance(2 * s)
        sim.act(0) { peer, now in peer.elect("q", now: now) }
        sim.act(2) { peer, now in peer.elect("q", now: now) }
        sim.advance(3 * s)
        XCTAssertNil(sim.nodes[0].peer.leader(of: "q").id, "minority elected a leader")
        XCTAssertNotNil(sim.nodes[2].peer.leader(of: "q").id, "majority has no leader")
        sim.heal()
        sim.advance(6 * s)
        assertNone(sim.termViolations("q"), sim, "two leaders in one term")
        assertNone(sim.leaderViolations("q"), sim, "agreement after heal")
    }
}
