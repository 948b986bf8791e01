import Foundation
import StarlingCore
import StarlingSimulator
import XCTest

/// Randomised fault schedules over many seeds, checking the invariants after the faults stop.
/// CI runs a bounded number of seeds; `STARLING_SIM_SEEDS=500` runs a long campaign, and
/// `STARLING_SIM_SEED=N` replays one seed.
final class PropertyTests: XCTestCase {
    let ms: UInt64 = 1_000_000

    /// A small schedule of faults, as code: what happens at which virtual time.
    enum Fault: CustomStringConvertible {
        case crash(Int), restart(Int, keepState: Bool), pause(Int, UInt64), split([Int]), heal, revoke(Int, String), elect(Int), loss(Double)

        var description: String {
            switch self {
            case .crash(let n): "crash node-\(n)"
            case .restart(let n, let keep): "restart node-\(n)\(keep ? " with state" : "")"
            case .pause(let n, let d): "pause node-\(n) \(d / 1_000_000) ms"
            case .split(let side): "split \(side) from the rest"
            case .heal: "heal"
            case .revoke(let n, let id): "node-\(n) revokes \(id)"
            case .elect(let n): "node-\(n) elects"
            case .loss(let rate): "loss \(Int(rate * 100)) %"
            }
        }
    }

    func schedule(seed: UInt64, nodes: Int) -> [(UInt64, Fault)] {
        var rng = SplitMix64(seed: seed &* 7919)
        var out: [(UInt64, Fault)] = []
        var time: UInt64 = 1_000 * ms
        var crashed = Set<Int>()
        for step in 0..<8 {
            time += (200 + rng.next() % 800) * ms
            let node = Int(rng.next() % UInt64(nodes))
            switch rng.next() % 8 {
            case 0 where !crashed.contains(node): out.append((time, .crash(node))); crashed.insert(node)
            case 1 where crashed.contains(node): out.append((time, .restart(node, keepState: rng.next() % 2 == 0))); crashed.remove(node)
            case 2: out.append((time, .pause(node, (100 + rng.next() % 1_500) * ms)))
            case 3: out.append((time, .split((0..<nodes).filter { _ in rng.next() % 2 == 0 })))
            case 4: out.append((time, .heal))
            case 5: out.append((time, .loss(Double(rng.next() % 30) / 100)))
            case 6: out.append((time, .elect(node)))
            default: out.append((time, .revoke(node, "id-\(seed)-\(step)")))
            }
        }
        // The faults stop: everything heals and crashed nodes come back.
        time += 500 * ms
        out.append((time, .heal))
        out.append((time, .loss(0)))
        for node in crashed.sorted() { out.append((time, .restart(node, keepState: true))) }
        out.append((time + 10 * ms, .elect(0)))
        return out
    }

    func run(seed: UInt64, keyed: Bool = false) -> [String] {
        let nodes = 7
        // With a key, replay windows and batched tag checks (a paused node resuming) join in.
        let key = AuthKey(Array(repeating: UInt8(truncatingIfNeeded: seed), count: 32))
        let sim = Simulator(nodes: nodes, seed: seed, conditions: NetworkConditions(loss: 0.02, duplicate: 0.01)) { config, _ in
            if keyed { config.keys = [key] }
        }
        sim.startAll(spread: 200 * ms)
        let faults = schedule(seed: seed, nodes: nodes)
        for (time, fault) in faults {
            sim.run(until: time)
            switch fault {
            case .crash(let n): sim.crash(n)
            case .restart(let n, let keep): sim.restart(n, keepState: keep)
            case .pause(let n, let d): sim.pause(n, for: d)
            case .split(let side): sim.split([side, (0..<nodes).filter { !side.contains($0) }])
            case .heal: sim.heal()
            case .revoke(let n, let id): if sim.nodes[n].isUp { sim.act(n) { peer, now in peer.revoke([id], now: now).1 } }
            case .elect(let n): if sim.nodes[n].isUp { sim.act(n) { peer, now in peer.elect("prop", now: now) } }
            case .loss(let rate): sim.conditions.loss = rate
            }
        }
        // Bounds after the faults stop: views within 10 s, revoked sets and leaders within 15 s.
        var problems: [String] = []
        if sim.runUntil(limit: 10_000 * ms, step: 50 * ms, { sim.viewViolations().isEmpty }) == nil { problems += sim.viewViolations() }
        if sim.runUntil(limit: 15_000 * ms, step: 100 * ms, { sim.revokedViolations().isEmpty }) == nil { problems += sim.revokedViolations() }
        if sim.runUntil(limit: 15_000 * ms, step: 100 * ms, { sim.leaderViolations("prop").isEmpty }) == nil { problems += sim.leaderViolations("prop") }
        problems += sim.violations
        problems += sim.encodeViolations()
        if !problems.isEmpty { problems.append("schedule: \(faults.map { "\($0.0 / 1_000_000)ms \($0.1)" })") }
        return problems
    }

    func testRandomFaultSchedulesKeepTheInvariants() {
        let environment = ProcessInfo.processInfo.environment
        let seeds: [UInt64]
        if let one = environment["STARLING_SIM_SEED"].flatMap({ UInt64($0) }) {
            seeds = [one]
        } else {
            let count = environment["STARLING_SIM_SEEDS"].flatMap { UInt64($0) } ?? 25
            seeds = Array(1...count)
        }
        for seed in seeds {
            let problems = run(seed: seed)
            XCTAssert(problems.isEmpty, "seed \(seed) broke an invariant: \(problems.prefix(6)) — replay: SWIFT_DETERMINISTIC_HASHING=1 STARLING_SIM_SEED=\(seed) swift test --filter PropertyTests")
        }
        // A few schedules again with a cluster key (fewer: tags are slow in a debug build).
        for seed in seeds.prefix(5) {
            let problems = run(seed: seed, keyed: true)
            XCTAssert(problems.isEmpty, "seed \(seed) with a key broke an invariant: \(problems.prefix(6)) — replay: SWIFT_DETERMINISTIC_HASHING=1 STARLING_SIM_SEED=\(seed) swift test --filter PropertyTests")
        }
    }
}

/// 1,000 simulated nodes join and converge. About a minute with the core optimised, so it runs
/// on demand: `STARLING_SIM_LARGE=1` (CI sets it, with `STARLING_OPTIMIZE_CORE=1`; the
/// benchmark's `sim` scenario reports the same run's figures).
final class LargeSimulationTests: XCTestCase {
    func testThousandNodesConverge() throws {
        guard ProcessInfo.processInfo.environment["STARLING_SIM_LARGE"] == "1" else {
            throw XCTSkip("1,000-node run is on demand: set STARLING_SIM_LARGE=1 (about a minute with STARLING_OPTIMIZE_CORE=1; CI sets both)")
        }
        let ms: UInt64 = 1_000_000
        let sim = Simulator(nodes: 1_000, seed: 1) { config, _ in config.pushPullInterval = 30_000 * ms }
        sim.checkStamps = false
        sim.startAll(spread: 500 * ms)
        XCTAssertNotNil(sim.runUntil(limit: 5_000 * ms, step: 100 * ms) { sim.viewViolations().isEmpty }, "\(sim.viewViolations().prefix(3))")
    }
}
