import StarlingCore
import StarlingPOSIX
import StarlingSimulator

/// Issue 16's simulator cost: n nodes × 60 virtual seconds within 15 minutes of wall time
/// and 20 GB, with what a minute of a large cluster's life holds in it. The nodes start warm
/// (views preloaded, as a cluster long converged: a cold start of 10,000 is its own figure,
/// in `sim`). Then, from the warm start: 2 s at idle; the disturbances, 1 % of the
/// nodes at 80 % loss and 10 % paused 200 ms at random moments for 10 s, then 5 s; then a
/// kill -9 every 5 s, each found dead by every other node, and a change of tags between two
/// kills; idle to the 60th second.
enum SimCostScenario {
    static func run(_ report: Report, sizes: [Int]) {
        for n in sizes {
            let wallStart = System.now().nanos
            let sim = Simulator(nodes: n, seed: 1)
            sim.checkStamps = false
            // Only what the checks read (a log of every status change grows with n²).
            sim.recordsEvent = { if case .statusChanged(_, _, _, .dead) = $0 { true } else { false } }
            sim.warmStart()
            sim.advance(1)
            let warmWall = System.now().nanos - wallStart
            let start = sim.now
            sim.advance(.millis(2_000))
            let disturbedFrom = System.now().nanos
            let lossy = Set(sim.disturb(seconds: 10))
            let disturbWall = System.now().nanos - disturbedFrom
            var found = Samples()
            var kills = 0
            for k in 0..<8 {
                guard let victim = (0..<n).lazy.map({ (k * 7_919 + 3 + $0) % n }).first(where: { !lossy.contains($0) && sim.nodes[$0].isUp })
                else { continue }
                let crashedAt = sim.now
                kills += 1
                if let time = sim.crashUntilFound(victim, limit: .millis(2_500)) { found.add(Double(time) / 1e6) }
                sim.run(until: crashedAt + .millis(2_500))
                if let tags = try? MemberTags(pairs: [("round", "\(k)")]) {
                    sim.act((k * 31 + 101) % n) { peer, now in peer.setTags(tags, now: now) }
                }
                sim.run(until: crashedAt + .millis(5_000))
            }
            sim.run(until: start + .millis(60_000))
            let wall = Double(System.now().nanos - wallStart) / 1e9
            report.add("sim-cost", "virtual time simulated after the warm start", Double(sim.now - start) / 1e9, "s", n: n)
            report.add("sim-cost", "wall time to start warm (views preloaded)", Double(warmWall) / 1e9, "s", n: n)
            report.add("sim-cost", "wall time of the disturbances (15 s virtual)", Double(disturbWall) / 1e9, "s", n: n)
            report.add("sim-cost", "wall time in all, warm start included", wall, "s", n: n)
            report.add("sim-cost", "simulator resident memory", Double(System.residentBytes()) / 1_048_576, "MB", n: n)
            // The crashed nodes are excused from their crash on, the lossy and paused ones throughout.
            report.add("sim-cost", "healthy nodes declared dead by healthy nodes", Double(sim.falseDeaths().count), "", n: n)
            report.summary("sim-cost", "kill -9 → dead on every other node (virtual)",
                found.values.count == kills ? found : .failing("\(kills - found.values.count) crash(es) not found within 2.5 s"), "ms", n: n)
            report.add("sim-cost", "invariant violations", Double(sim.violations.count), "", n: n)
        }
    }
}
