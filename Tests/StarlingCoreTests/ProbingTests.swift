@testable import StarlingCore
import XCTest

/// The version-2 failure detector (Protocol.md appendix A.3, A.5; issue 16), with the clock
/// passed in: one ping per period, helpers at the ping timeout, a verdict at the period's end,
/// and local health slowing a peer that hears nobody.
final class ProbingTests: XCTestCase {
    let ms: UInt64 = 1_000_000
    let settings = Probing.Settings(period: 200_000_000, pingTimeout: 50_000_000, helpers: 3)
    var rng = SplitMix64(seed: 3)
    let members = (1...5).map { NodeID(high: 7, low: UInt64($0)) }
    var alive: Set<NodeID> = []

    override func setUp() { alive = Set(members) }

    func endpoint(_ id: NodeID) -> Endpoint? { alive.contains(id) ? Endpoint(address: 0x7F00_0001, port: UInt16(truncatingIfNeeded: 9_000 + id.low)) : nil }

    func helpers(_ count: Int, _ target: NodeID) -> [Endpoint] {
        members.filter { $0 != target && alive.contains($0) }.prefix(count).compactMap(endpoint)
    }

    func probing() -> Probing {
        var probing = Probing(settings: settings, start: 0)
        for id in members { probing.add(id, rng: &rng) }
        return probing
    }

    func tick(_ probing: inout Probing, at now: UInt64) -> [Probing.Step] {
        probing.tick(now: now, rng: &rng, endpoint: endpoint, helpers: helpers)
    }

    func testOnePingPerPeriodAndAnAckEndsIt() {
        var p = probing()
        XCTAssertEqual(tick(&p, at: 100 * ms), [], "nothing before the first period")
        XCTAssertEqual(p.nextDeadline, 200 * ms)
        let steps = tick(&p, at: 200 * ms)
        guard case .ping(let probeID, let target, let to) = steps.first, steps.count == 1 else { return XCTFail("\(steps)") }
        XCTAssertEqual(to, endpoint(target))
        XCTAssertEqual(p.nextDeadline, 250 * ms)
        XCTAssertFalse(p.onAck(probeID: probeID &+ 1, target: target), "another probe's ack")
        XCTAssertTrue(p.onAck(probeID: probeID, target: target))
        XCTAssertNil(p.inFlight)
        XCTAssertEqual(tick(&p, at: 300 * ms), [], "the next ping waits for the next period")
        XCTAssertEqual(tick(&p, at: 400 * ms).count, 1)
    }

    func testUnansweredPingAsksHelpersThenSuspects() {
        var p = probing()
        guard case .ping(let probeID, let target, _) = tick(&p, at: 200 * ms).first else { return XCTFail() }
        let asked = tick(&p, at: 250 * ms)
        guard case .pingRequest(probeID, target, let at, let helpers) = asked.first else { return XCTFail("\(asked)") }
        XCTAssertEqual(at, endpoint(target))
        XCTAssertEqual(helpers.count, 3)
        XCTAssertFalse(helpers.contains(endpoint(target)!))
        XCTAssertEqual(tick(&p, at: 260 * ms), [], "helpers are asked once")
        // Two helpers say they could not reach it either; one says nothing.
        p.onNack(probeID: probeID, target: target)
        p.onNack(probeID: probeID, target: target)
        let verdict = tick(&p, at: 400 * ms)
        XCTAssertEqual(verdict.first, .suspect(target))
        XCTAssertEqual(verdict.count, 2, "and the next period's ping goes out in the same pass")
        XCTAssertEqual(p.health.score, 1, "one missing nack")
    }

    /// Found porting the tests (issue 16): with no helper to ask (a view of one other member),
    /// the ping timeout stayed the next deadline after it passed, and the loop spun until the
    /// period's end.
    func testNoHelperToAskMovesTheDeadlineToTheVerdict() {
        var p = probing()
        guard case .ping(_, let target, _) = tick(&p, at: 200 * ms).first else { return XCTFail() }
        alive = [target]
        XCTAssertEqual(tick(&p, at: 250 * ms), [])
        XCTAssertEqual(p.nextDeadline, 400 * ms, "the verdict, not the ping timeout again")
        XCTAssertEqual(tick(&p, at: 400 * ms).first, .suspect(target))
    }

    func testARelayedAckSavesTheTarget() {
        var p = probing()
        guard case .ping(let probeID, let target, _) = tick(&p, at: 200 * ms).first else { return XCTFail() }
        _ = tick(&p, at: 250 * ms)
        XCTAssertTrue(p.onAck(probeID: probeID, target: target))
        XCTAssertFalse(tick(&p, at: 400 * ms).contains(.suspect(target)))
    }

    func testATargetThatLeftMeanwhileIsNotSuspected() {
        var p = probing()
        guard case .ping(_, let target, _) = tick(&p, at: 200 * ms).first else { return XCTFail() }
        alive.remove(target)
        XCTAssertFalse(tick(&p, at: 400 * ms).contains(.suspect(target)))
        for now in stride(from: 600 * ms, through: 4_000 * ms, by: Int(200 * ms)) {
            for step in tick(&p, at: now) { if case .ping(_, let id, _) = step { XCTAssertNotEqual(id, target) } }
        }
    }

    /// A peer that hears nobody (its own receive path is broken) slows its verdicts.
    func testLocalHealthStretchesPeriodsOfAPeerThatHearsNobody() {
        var p = probing()
        var now = 200 * ms
        var verdicts: [UInt64] = []
        for _ in 0..<40 {
            for step in tick(&p, at: now) { if case .suspect = step { verdicts.append(now) } }
            now = p.nextDeadline
        }
        XCTAssertEqual(p.health.score, LocalHealth.maximum)
        let gaps = zip(verdicts.dropFirst(), verdicts).map { $0 - $1 }
        XCTAssertEqual(gaps.first, 4 * 200 * ms, "three helpers, no nack: three steps down at once")
        XCTAssertEqual(gaps.last, 9 * 200 * ms, "nine times slower at the cap")
    }

    func testEveryMemberIsPingedWithinTwoRounds() {
        var p = probing()
        var targets: [NodeID] = []
        var now: UInt64 = 200 * ms
        for _ in 0..<100 {
            for step in tick(&p, at: now) {
                if case .ping(let id, let target, _) = step {
                    targets.append(target)
                    XCTAssertTrue(p.onAck(probeID: id, target: target))
                }
            }
            now += 200 * ms
        }
        XCTAssertEqual(targets.count, 100)
        for start in 0...(targets.count - 10) { XCTAssertEqual(Set(targets[start..<(start + 10)]).count, 5) }
    }

    func testRendezvousChoiceIsTheSameEverywhereAndExcludesTheKey() {
        let ids = (0..<200).map { NodeID(high: 9, low: UInt64($0)) }
        let key = ids[17]
        let chosen = Rendezvous.choose(3, for: key, among: ids)
        XCTAssertEqual(chosen.count, 3)
        XCTAssertFalse(chosen.contains(key))
        XCTAssertEqual(Rendezvous.choose(3, for: key, among: ids.reversed()), chosen, "order of the view does not matter")
        for id in ids { XCTAssertEqual(Rendezvous.isChosen(id, count: 3, for: key, among: ids), chosen.contains(id)) }
        // Removing one unchosen member changes nothing; removing a chosen one brings in one new.
        let unchosen = ids.first { !chosen.contains($0) && $0 != key }!
        XCTAssertEqual(Rendezvous.choose(3, for: key, among: ids.filter { $0 != unchosen }), chosen)
        let after = Rendezvous.choose(3, for: key, among: ids.filter { $0 != chosen[0] })
        XCTAssertEqual(Set(after).intersection(chosen).count, 2)
        // Different keys spread the work.
        let load = ids.flatMap { Rendezvous.choose(3, for: $0, among: ids) }.reduce(into: [NodeID: Int]()) { $0[$1, default: 0] += 1 }
        XCTAssertLessThan(load.values.max() ?? 0, 12, "no member witnesses for everyone")
    }
}
