import StarlingCore
import StarlingPOSIX
import StarlingSimulator

/// What loss costs in datagrams (issue 21: "extra datagrams sent because of retries ≤ 1.5× the
/// loss-free count"), in virtual time where every send is counted: the same revoke (as
/// `starling revoke`: acknowledged by every live member), election (an `elect` request, as
/// `starling elect`) and mingle (a joiner pulling the cluster's revoked set) at 0 %, 10 % and
/// 30 % loss on every link. Each operation counts the datagrams of its own types sent by every
/// node from its start until one second after it completed (so that late repairs count too);
/// the probing that goes on meanwhile is not counted.
enum SimLossScenario {
    static let revokeTypes: [MessageType] = [.controlRequest, .controlReply, .digestRequest, .digestReply, .pageRequest, .page]
    static let electTypes: [MessageType] = [.controlRequest, .controlReply, .candidacy, .leader, .vote]
    static let mingleTypes: [MessageType] = [.hello, .helloReply, .digestRequest, .digestReply, .pageRequest, .page]

    static func run(_ report: Report, n: Int, rounds: Int, ids: Int) {
        let joiners = max(1, rounds / 2)
        var baseline: [String: Double] = [:]
        for loss in [0.0, 0.1, 0.3] {
            let label = "\(Int(loss * 100)) % loss"
            let entries = (0..<ids).map { RevokedEntry(id: "job-\(100_000_000 + $0)", revokedAtMillis: 1_800_000_000_000) }
            // Nodes n and above are the joiners: started last, with nothing.
            let sim = Simulator(nodes: n + joiners, seed: 21, conditions: NetworkConditions(loss: loss), revoked: Dictionary(uniqueKeysWithValues: (0..<n).map { ($0, entries) })) { config, _ in
                // Room for the rounds' own revokes beside the seeded ids.
                config.revokedMaxCount = max(config.revokedMaxCount, ids + 1_000)
            }
            sim.checkStamps = false
            for index in 0..<n { sim.start(index, at: UInt64(index) * .millis(10)) }
            guard sim.runUntil(limit: .millis(60_000), step: .millis(100), { upViewsAgree(sim, n) }) != nil else {
                report.summary("sim-loss", "views agreed (\(label))", .failing("views did not agree within 60 s"), "", n: n)
                continue
            }
            // Round trips and loss measured (the decision window and LEADER repeats use them).
            sim.advance(.millis(3_000))
            var revokeSent = Samples(), revokeTime = Samples(), electSent = Samples(), electTime = Samples()
            for round in 0..<rounds {
                let caller = (round * 7 + 1) % n
                let id = "sim-loss-\(round)"
                var requestID: UInt32 = 0
                let revoke = measure(sim, revokeTypes, limit: .millis(5_000), cause: {
                    sim.act(caller) { peer, now in
                        let (request, actions) = peer.revoke([id], options: RequestOptions(deadline: .millis(3_000)), now: now)
                        requestID = request
                        return actions
                    }
                }, done: { finished(sim, caller, requestID) && (0..<n).allSatisfy { sim.nodes[$0].peer.revoked.contains(id) } })
                if let revoke { revokeSent.add(revoke.sent); revokeTime.add(revoke.millis) } else { revokeSent.fail("not acknowledged and held by all within 5 s") }
                let topic = "sim-loss-\(round % 3)"
                let elect = measure(sim, electTypes, limit: .millis(5_000), cause: {
                    sim.act(caller) { peer, now in
                        let (request, actions) = peer.request("elect", args: [topic], options: RequestOptions(expected: n - 1, deadline: .millis(3_000)), now: now)
                        requestID = request
                        return actions
                    }
                }, done: { finished(sim, caller, requestID) && agreed(sim, n, topic) })
                if let elect { electSent.add(elect.sent); electTime.add(elect.millis) } else {
                    let views = Dictionary(grouping: 0..<n) { sim.nodes[$0].peer.leader(of: topic).id?.short ?? "-" }.mapValues(\.count)
                    electSent.fail(finished(sim, caller, requestID) ? "no agreement within 5 s (leaders named: \(views.sorted { $0.key < $1.key }))" : "elect request not answered by all within its 3 s deadline")
                }
            }
            // Joiners, one at a time, each into the cluster of the n and the joiners before it.
            var mingleSent = Samples(), mingleTime = Samples()
            for joiner in n..<(n + joiners) {
                let mingle = measure(sim, mingleTypes, limit: .millis(10_000), cause: { sim.start(joiner) }, done: {
                    sim.nodes[joiner].events.contains { if case .synced = $0.event { true } else { false } }
                })
                if let mingle, sim.nodes[joiner].peer.revoked.count >= ids { mingleSent.add(mingle.sent); mingleTime.add(mingle.millis) } else { mingleSent.fail("joiner did not sync every id within 10 s") }
            }
            for (name, sent, time) in [("revoke acknowledged and held by all", revokeSent, revokeTime),
                                       ("elect request → every node names the leader", electSent, electTime),
                                       ("mingle \(ids) ids", mingleSent, mingleTime)] {
                report.summary("sim-loss", "\(name): datagrams sent (\(label))", sent, "", n: n)
                report.summary("sim-loss", "\(name): virtual time (\(label))", time, "ms", n: n)
                guard let median = sent.median else { continue }
                if loss == 0 {
                    baseline[name] = median
                } else if let base = baseline[name], base > 0 {
                    report.add("sim-loss", "\(name): datagrams at \(label) ÷ loss-free (target ≤ 1.5)", (median / base * 100).rounded() / 100, "×", n: n)
                }
            }
        }
    }

    /// Whether every started node holds the same live view of the started nodes.
    static func upViewsAgree(_ sim: Simulator, _ n: Int) -> Bool {
        (0..<n).allSatisfy { sim.nodes[$0].peer.liveCount == n }
    }

    /// Whether the started nodes all name the same leader of `topic` (the joiner, not started
    /// yet, names none).
    static func agreed(_ sim: Simulator, _ n: Int, _ topic: String) -> Bool {
        let leaders = Set((0..<n).map { sim.nodes[$0].peer.leader(of: topic).id })
        return leaders.count == 1 && leaders.first! != nil
    }

    /// Whether `node`'s request ended with every expected reply in.
    static func finished(_ sim: Simulator, _ node: Int, _ requestID: UInt32) -> Bool {
        sim.nodes[node].events.reversed().contains { record in
            if case .requestFinished(let id, .allReplied, _, _) = record.event { id == requestID } else { false }
        }
    }

    /// Runs `cause`, then until `done` (1 ms steps) and one more second: the datagrams of
    /// `types` sent meanwhile and the virtual time to `done`, or nil past `limit`.
    static func measure(_ sim: Simulator, _ types: [MessageType], limit: UInt64, cause: () -> Void, done: () -> Bool) -> (sent: Double, millis: Double)? {
        let count = { types.reduce(UInt64(0)) { $0 + (sim.sendsByType[$1.rawValue] ?? 0) } }
        let before = count()
        let snapshot = sim.sendsByType
        let start = sim.now
        cause()
        guard let at = sim.runUntil(limit: limit, step: .millis(1), done) else { return nil }
        sim.advance(.millis(1_000))
        if System.environment("SIM_LOSS_DEBUG") != nil { print(types.map { "\($0): \((sim.sendsByType[$0.rawValue] ?? 0) - (snapshot[$0.rawValue] ?? 0))" }) }
        return (Double(count() - before), Double(at - start) / 1e6)
    }
}
