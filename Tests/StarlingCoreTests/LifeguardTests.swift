@testable import StarlingCore
import XCTest

/// Lifeguard's parts for protocol version 2 (issue 16): suspicion timeouts, local health and
/// the probe order, with no clock but the numbers passed in.
final class LifeguardTests: XCTestCase {
    let ms: UInt64 = 1_000_000
    let a = NodeID(high: 1, low: 1)
    let b = NodeID(high: 1, low: 2)
    let c = NodeID(high: 1, low: 3)
    let d = NodeID(high: 1, low: 4)

    func testNaturalLogarithmMatchesKnownValues() {
        for (x, expected) in [(1.0, 0.0), (2.0, 0.693_147_180_56), (10.0, 2.302_585_093), (0.5, -0.693_147_180_56),
                              (10_000.0, 9.210_340_372), (1e300, 690.775_527_898)] {
            XCTAssertEqual(Logarithm.natural(x), expected, accuracy: 1e-8 * max(1, abs(expected)), "ln \(x)")
        }
        XCTAssertEqual(Logarithm.natural(0), 0)
        XCTAssertEqual(Logarithm.natural(-3), 0)
        XCTAssertEqual(Logarithm.natural(.nan), 0)
        XCTAssertEqual(Logarithm.natural(.infinity), 0)
        XCTAssertEqual(Logarithm.nodeScale(1), 1)
        XCTAssertEqual(Logarithm.nodeScale(10_000), 4, accuracy: 1e-9)
        XCTAssertEqual(Logarithm.nodeScale(Int.min), 1)
    }

    func testClampingNanosNeverTraps() {
        XCTAssertEqual(UInt64(clampingNanos: .nan), 0)
        XCTAssertEqual(UInt64(clampingNanos: -1), 0)
        XCTAssertEqual(UInt64(clampingNanos: .infinity), .max)
        XCTAssertEqual(UInt64(clampingNanos: 1e30), .max)
        XCTAssertEqual(UInt64(clampingNanos: 1_500.7), 1_500)
    }

    func testSuspicionBoundsGrowWithLogOfTheView() {
        let small = Suspicion.bounds(members: 5, period: 200 * ms, alpha: 1, beta: 6)
        XCTAssertEqual(small.minimum, 200 * ms)
        XCTAssertEqual(small.maximum, 1_200 * ms)
        let large = Suspicion.bounds(members: 10_000, period: 200 * ms, alpha: 1, beta: 6)
        XCTAssertEqual(Double(large.minimum), Double(800 * ms), accuracy: 1_000)
        XCTAssertEqual(Double(large.maximum), Double(4_800 * ms), accuracy: 6_000)
        let absurd = Suspicion.bounds(members: .max, period: .max, alpha: 1e300, beta: 1e300)
        XCTAssertEqual(absurd.minimum, .max)
        XCTAssertEqual(absurd.maximum, .max)
    }

    func testConfirmationsShrinkTheTimeoutFromMaximumToMinimum() {
        var suspicion = Suspicion(by: a, now: 1_000 * ms, minimum: 400 * ms, maximum: 2_400 * ms, wanted: 3)
        XCTAssertEqual(suspicion.timeout, 2_400 * ms)
        XCTAssertEqual(suspicion.deadline, 3_400 * ms)
        // The suspector itself does not count, nor does anyone twice.
        XCTAssertFalse(suspicion.confirm(by: a))
        XCTAssertTrue(suspicion.confirm(by: b))
        XCTAssertFalse(suspicion.confirm(by: b))
        // One of three: ln 2 / ln 4 = 1/2 of the way down.
        XCTAssertEqual(Double(suspicion.timeout), Double(1_400 * ms), accuracy: 1_000)
        XCTAssertTrue(suspicion.confirm(by: c))
        XCTAssertTrue(suspicion.confirm(by: d))
        XCTAssertEqual(suspicion.timeout, 400 * ms)
        XCTAssertFalse(suspicion.confirm(by: NodeID(high: 9, low: 9)), "more than K are not kept")
        XCTAssertEqual(suspicion.confirmers.count, 3)
        XCTAssertFalse(suspicion.hasExpired(now: 1_399 * ms))
        XCTAssertTrue(suspicion.hasExpired(now: 1_400 * ms))
    }

    func testSuspicionAtTheTopOfTimeNeverWraps() {
        let suspicion = Suspicion(by: a, now: .max - 5, minimum: 10, maximum: 20, wanted: 0)
        XCTAssertEqual(suspicion.timeout, 10)
        XCTAssertEqual(suspicion.deadline, .max)
        let inverted = Suspicion(by: a, now: 0, minimum: 50, maximum: 20, wanted: 3)
        XCTAssertEqual(inverted.timeout, 20)
    }

    func testLocalHealthScalesAndIsCapped() {
        var health = LocalHealth()
        XCTAssertEqual(health.scaled(100 * ms), 100 * ms)
        health.note(.probeUnanswered)
        health.note(.nackMissed)
        XCTAssertEqual(health.scaled(100 * ms), 300 * ms)
        for _ in 0..<20 { health.note(.refuted) }
        XCTAssertEqual(health.score, LocalHealth.maximum)
        XCTAssertEqual(health.scaled(100 * ms), 900 * ms)
        XCTAssertEqual(health.scaled(.max), .max)
        for _ in 0..<20 { health.note(.probeAnswered) }
        XCTAssertEqual(health.score, 0)
    }

    func testEveryMemberIsProbedWithinTwoRounds() {
        var rng = SplitMix64(seed: 42)
        var order = ProbeOrder()
        let ids = (0..<50).map { NodeID(high: 2, low: UInt64($0)) }
        for id in ids { order.insert(id, rng: &rng) }
        order.insert(ids[0], rng: &rng)
        XCTAssertEqual(order.count, 50, "an id is in the rotation once")
        var picks: [NodeID] = []
        for _ in 0..<1_000 { if let id = order.next(rng: &rng, keep: { _ in true }) { picks.append(id) } }
        XCTAssertEqual(picks.count, 1_000)
        for start in 0...(picks.count - 100) {
            XCTAssertEqual(Set(picks[start..<(start + 100)]).count, 50, "window at \(start)")
        }
        // Rounds are shuffled: the second round is not the first again.
        XCTAssertNotEqual(Array(picks[0..<50]), Array(picks[50..<100]))
    }

    func testMembersThatGoLeaveTheRotationAndNewcomersComeUpThisRound() {
        var rng = SplitMix64(seed: 7)
        var order = ProbeOrder()
        let ids = (0..<10).map { NodeID(high: 3, low: UInt64($0)) }
        for id in ids { order.insert(id, rng: &rng) }
        var gone: Set<NodeID> = [ids[1], ids[5]]
        var seen: [NodeID] = []
        for _ in 0..<8 { if let id = order.next(rng: &rng, keep: { !gone.contains($0) }) { seen.append(id) } }
        XCTAssertEqual(Set(seen).count, 8)
        XCTAssertTrue(Set(seen).isDisjoint(with: gone))
        XCTAssertEqual(order.count, 8)
        let newcomer = NodeID(high: 3, low: 99)
        order.insert(newcomer, rng: &rng)
        XCTAssertEqual(order.next(rng: &rng, keep: { _ in true }), newcomer, "the only one not yet visited this round")
        gone = Set(ids).union([newcomer])
        XCTAssertNil(order.next(rng: &rng, keep: { !gone.contains($0) }))
        XCTAssertEqual(order.count, 0)
    }
}
