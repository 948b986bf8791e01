import StarlingCore
import StarlingSimulator
import XCTest

/// Issue 16's cold start, scaled down: the admission rate (Protocol.md §6.6) is cut so that
/// 200 peers started within 0.5 s refuse most of each other at first, as 2,000 do at the
/// default rate. The waiting room asks the refused ones when the rate allows, and a
/// responder's view update tells a newcomer of the members it admitted after its answer
/// (§6.1.2). Before both, refused newcomers were forgotten and came back only through
/// gossip and push-pull slices: some views were incomplete a minute after the last start.
final class ColdStartSimTests: XCTestCase {
    let ms: UInt64 = 1_000_000

    func testARateLimitedColdStartConvergesWithinSeconds() {
        let sim = Simulator(nodes: 200, seed: 7) { config, _ in
            // 200 newcomers in 0.5 s against a burst of 24 and 48 a second: the bucket is spent
            // in the first tenth of a second, and the rest takes about 4 s of tokens. Every
            // view is whole about 5.5 s after the first start (without the waiting room's wait
            // and the view updates: 29 s, the last pairs found by probing).
            config.limits.admissionBurst = 24
            config.limits.admissionsPerSecond = 48
            // No size hint: 200 expected would raise the rate to 50 a second (§6.6).
            config.expectedMembers = 0
            // As at 2,000: piggyback queues overrun by joins, push-pull slices far apart.
            config.limits.piggybackQueue = 8
            config.pushPullInterval = 30_000_000_000
        }
        sim.checkStamps = false
        sim.startAll(spread: 500 * ms)
        let converged = sim.runUntil(limit: 10_000 * ms, step: 100 * ms) { sim.viewsAgree() }
        XCTAssertNotNil(converged, "\(sim.viewViolations().prefix(3))")
        let refused = sim.nodes.reduce(UInt64(0)) { $0 + ($1.peer.counters.drops["admission_limited"] ?? 0) }
        XCTAssertGreaterThan(refused, 10_000, "most newcomers were refused at first: the scenario exercises the waiting room")
    }
}
