import StarlingCore
import StarlingPOSIX
import StarlingSimulator

/// Elections at size in virtual time (issue 16, Protocol.md §6.4 and appendix A.2 item 1):
/// group datagrams (CANDIDACY, LEADER, VOTE, each counted once however many receive it) per
/// election, and the virtual time until every node names the same leader — for an `elect`
/// request, and for the re-election after the leader is killed (from the kill, and from the
/// first node that saw the leader gone, i.e. without failure detection).
enum SimElectionScenario {
    static func run(_ report: Report, sizes: [Int], rounds: Int) {
        for n in sizes {
            let wallStart = System.now().nanos
            let sim = Simulator(nodes: n, seed: 16) { config, _ in config.pushPullInterval = .millis(30_000) }
            sim.checkStamps = false
            sim.startAll(spread: .millis(500))
            let step: UInt64 = n > 2_000 ? .millis(1_000) : .millis(100)
            // Elections run even where some views stay incomplete (the cold start of appendix
            // A.2 item 4); the report says which.
            let converged = sim.runUntil(limit: .millis(60_000), step: step, { sim.viewViolations().isEmpty }) != nil
            report.add("sim-election", "views agreed before the elections (1 yes, 0 no)", converged ? 1 : 0, "", n: n)
            sim.advance(.millis(3_000))
            electionRounds(sim, report, scenario: "sim-election", n: n, rounds: rounds)
            report.add("sim-election", "wall time", Double(System.now().nanos - wallStart) / 1e9, "s", n: n)
        }
    }

    /// `rounds` rounds each of an `elect` on a new topic and a `kill -9` of its leader, on a
    /// cluster whose views agree; the figures go under `scenario`.
    static func electionRounds(_ sim: Simulator, _ report: Report, scenario: String, n: Int, rounds: Int) {
        var electDatagrams = Samples(), electTime = Samples()
        var lossDatagrams = Samples(), lossTime = Samples(), lossElection = Samples()
        for round in 0..<rounds {
            let topic = "job-\(round)"
            let up = sim.nodes.indices.filter { sim.nodes[$0].isUp }
            let caller = up[(round * 7_919 + 3) % up.count]
            guard let elected = sim.measureElection(topic, afterTerm: 0, limit: .millis(5_000), cause: {
                sim.act(caller) { peer, now in peer.elect(topic, now: now) }
            }) else {
                electDatagrams.fail("no agreement within 5 s")
                continue
            }
            electDatagrams.add(Double(elected.groupDatagrams))
            electTime.add(Double(elected.agreedAfter) / 1e6)
            guard let leader = sim.indexOf[elected.leader],
                  let reelected = sim.measureElection(topic, afterTerm: elected.term, limit: .millis(10_000), cause: { sim.crash(leader) })
            else {
                lossDatagrams.fail("no agreement within 10 s of the leader's crash")
                continue
            }
            lossDatagrams.add(Double(reelected.groupDatagrams))
            lossTime.add(Double(reelected.agreedAfter) / 1e6)
            lossElection.add(Double(reelected.electedAfter) / 1e6)
        }
        report.summary(scenario, "elect: group datagrams per election", electDatagrams, "", n: n)
        report.summary(scenario, "elect: virtual time until every node names the leader", electTime, "ms", n: n)
        report.summary(scenario, "leader killed: group datagrams per re-election", lossDatagrams, "", n: n)
        report.summary(scenario, "leader killed: kill → every node names the new leader (virtual)", lossTime, "ms", n: n)
        report.summary(scenario, "leader killed: first node without leader → every node names the new one", lossElection, "ms", n: n)
    }
}
