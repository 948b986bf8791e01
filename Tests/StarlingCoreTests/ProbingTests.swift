@testable import StarlingCore
import XCTest

/// The version-2 failure detector (Protocol.md §6.1.5, §6.1.7; issue 16), with the clock
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

    /// Issue 16: witnesses and responders come from the hash ring: the same choice whatever
    /// the order members were learned in, never the key or the excluded accuser, little change
    /// when one member goes, and spread over the members.
    func testRingChoiceIsTheSameEverywhereAndExcludesTheKey() {
        let ids = (0..<200).map { NodeID(high: 9, low: UInt64($0)) }
        let key = ids[17]
        let chosen = Ring(ids).successors(of: key, count: 3)
        XCTAssertEqual(chosen.count, 3)
        XCTAssertFalse(chosen.contains(key))
        XCTAssertEqual(Ring(ids.reversed()).successors(of: key, count: 3), chosen, "order of the view does not matter")
        XCTAssertFalse(Ring(ids).successors(of: key, count: 3, excluding: chosen[1]).contains(chosen[1]))
        // Removing one unchosen member changes nothing; removing a chosen one brings in one new.
        let unchosen = ids.first { !chosen.contains($0) && $0 != key }!
        XCTAssertEqual(Ring(ids.filter { $0 != unchosen }).successors(of: key, count: 3), chosen)
        var ring = Ring(ids)
        ring.remove(chosen[0])
        XCTAssertEqual(ring.count, 199)
        XCTAssertEqual(Set(ring.successors(of: key, count: 3)).intersection(chosen).count, 2)
        // Different keys spread the work.
        let full = Ring(ids)
        let load = ids.flatMap { full.successors(of: $0, count: 3) }.reduce(into: [NodeID: Int]()) { $0[$1, default: 0] += 1 }
        XCTAssertLessThan(load.values.max() ?? 0, 20, "no member answers for everyone")
        // A ring smaller than the count gives everyone but the key.
        XCTAssertEqual(Set(Ring(ids.prefix(3)).successors(of: ids[0], count: 3)), Set(ids[1..<3]))
    }

    /// The ring's positions are §6.1.3's, checked against a plain byte-by-byte FNV-1a 64 over
    /// the id's 16 big-endian bytes and SplitMix64's finalizer; and its order is (position, id)
    /// after members came in any order and some left (the searches compare stored key bits).
    func testRingPositionsAndOrderAreTheSpecs() {
        func reference(_ id: NodeID) -> UInt64 {
            let bytes = [id.high, id.low].flatMap { word in (0..<8).reversed().map { UInt8(truncatingIfNeeded: word >> (UInt64($0) * 8)) } }
            var hash: UInt64 = 14_695_981_039_346_656_037
            for byte in bytes { hash = (hash ^ UInt64(byte)) &* 1_099_511_628_211 }
            hash = (hash ^ (hash >> 30)) &* 0xBF58_476D_1CE4_E5B9
            hash = (hash ^ (hash >> 27)) &* 0x94D0_49BB_1331_11EB
            return hash ^ (hash >> 31)
        }
        var rng = SplitMix64(seed: 31)
        let ids = (0..<3_000).map { _ in NodeID(high: rng.next(), low: rng.next()) }
        for id in ids.prefix(300) { XCTAssertEqual(Ring.position(id), reference(id)) }
        XCTAssertEqual(Ring.position(NodeID(high: 0, low: 0)), reference(NodeID(high: 0, low: 0)))
        var ring = Ring(ids.shuffled(using: &rng))
        for id in ids.prefix(1_000) { ring.remove(id) }
        let order = ids.dropFirst(1_000).sorted { (reference($0), $0) < (reference($1), $1) }
        XCTAssertEqual((0..<ring.count).compactMap { ring.member(at: $0) }, order)
    }

    /// The quick test of "am I a responder" gives exactly what the list gives: rings from 0 to
    /// 3,000 members (buckets empty, sparse and full), keys in and out of the ring, counts 1–5.
    func testIsSuccessorAgreesWithTheSuccessorList() {
        var rng = SplitMix64(seed: 29)
        for size in [0, 1, 2, 3, 5, 40, 300, 3_000] {
            let ids = (0..<size).map { _ in NodeID(high: rng.next(), low: rng.next()) }
            let ring = Ring(ids)
            for round in 0..<300 {
                let key = round % 2 == 0 && !ids.isEmpty ? ids[Int(rng.next() % UInt64(ids.count))] : NodeID(high: rng.next(), low: rng.next())
                let wanted = Int(rng.next() % 5) + 1
                let chosen = ring.successors(of: key, count: wanted)
                // Members from the list, members outside it, and the key itself.
                var asked = chosen + [key]
                if !ids.isEmpty { asked += (0..<4).map { _ in ids[Int(rng.next() % UInt64(ids.count))] } }
                for member in asked {
                    XCTAssertEqual(ring.isSuccessor(member, of: key, count: wanted), chosen.contains(member), "size \(size), round \(round)")
                }
            }
        }
    }
}

/// The version-2 probing rules as a whole peer sees them (issue 16), with the injected clock.
final class PeerProbingTests: XCTestCase {
    let ms = PeerHarness.ms

    func endpoint(_ h: PeerHarness, _ id: NodeID) -> Destination { .peer(Endpoint(address: PeerHarness.loopback, port: h.port(of: id))) }

    /// Issue 16: no ACK by the ping timeout → PING_REQ to 3 helpers (never the target); helpers'
    /// NACKs keep local health; no ACK by the period's end → suspect, with exactly one
    /// CHANGE(suspect) multicast by the accuser.
    func testPingRequestToThreeHelpersThenSuspicionWithOneChange() throws {
        var h = PeerHarness()
        h.start()
        _ = h.join(5)
        h.clearSent()
        h.advance(200 * ms)
        XCTAssertEqual(h.pings.count, 1, "one PING per period")
        let ping = try XCTUnwrap(h.pings.first)
        let target = ping.target
        h.advance(50 * ms - 1)
        XCTAssertTrue(h.pingRequests.isEmpty, "not before the ping timeout")
        h.advance(1)
        XCTAssertEqual(h.pingRequests.count, 3)
        XCTAssertEqual(Set(h.pingRequests.map { "\($0.1)" }).count, 3, "three distinct helpers")
        XCTAssertFalse(h.pingRequests.contains { $0.1 == endpoint(h, target) })
        XCTAssertTrue(h.pingRequests.allSatisfy { $0.0 == Probe(probeID: ping.probeID, target: target) })
        for (_, destination) in h.pingRequests {
            guard case .peer(let at) = destination, let helper = h.fakes[at.port] else { return XCTFail("\(destination)") }
            h.receive(.nack(Probe(probeID: ping.probeID, target: target)), from: helper.id, name: helper.name, port: at.port)
        }
        h.clearSent()
        h.advance(150 * ms - 1)
        XCTAssertEqual(h.peer.members[target]?.status, .alive)
        XCTAssertTrue(h.changes.isEmpty)
        h.advance(1)
        XCTAssertEqual(h.peer.members[target]?.status, .suspect, "at the period's end")
        XCTAssertEqual(h.peer.membership.probing.health.score, 0, "every helper sent its NACK")
        XCTAssertEqual(h.peer.suspicions[target]?.accused, true)
        h.advance(1_000 * ms, silent: [target])
        let about = h.changes.filter { $0.0.contains { $0.id == target } }
        XCTAssertEqual(about.count, 1, "one CHANGE, multicast once")
        XCTAssertEqual(about.first?.0, [h.entry(target, .suspect)])
        XCTAssertEqual(about.first?.1, .group)
    }

    /// Issue 16: a helper PINGs the target for the requester and sends a NACK at 80 % of its
    /// ping timeout when no ACK came; the relay lives one period. A PING_REQ about the helper
    /// itself is answered with an ACK at once; one about a member it does not hold is ignored.
    func testHelperSendsANackAtEightyPercent() throws {
        var h = PeerHarness()
        h.start()
        let fakes = h.join(2)
        let (requester, target) = (fakes[0], fakes[1])
        h.clearSent()
        h.receive(.pingRequest(Probe(probeID: 77, target: target)), from: requester, name: "f0", port: h.port(of: requester))
        XCTAssertEqual(h.pings.map(\.target), [target])
        XCTAssertEqual(h.sent.last?.1, endpoint(h, target))
        h.advance(40 * ms - 1)
        XCTAssertTrue(h.nacks.isEmpty)
        h.advance(1)
        XCTAssertEqual(h.nacks.map(\.0), [Probe(probeID: 77, target: target)])
        XCTAssertEqual(h.nacks.first?.1, endpoint(h, requester))
        h.advance(160 * ms)
        XCTAssertTrue(h.peer.relays.isEmpty, "a relay lives one period")

        h.clearSent()
        h.receive(.pingRequest(Probe(probeID: 78, target: h.peer.config.id)), from: requester, name: "f0", port: h.port(of: requester))
        XCTAssertEqual(h.acks.map(\.0.probeID), [78])
        XCTAssertEqual(h.acks.first?.0.target, h.peer.config.id)
        h.clearSent()
        h.receive(.pingRequest(Probe(probeID: 79, target: NodeID(high: 0xBAD, low: 1))), from: requester, name: "f0", port: h.port(of: requester))
        XCTAssertTrue(h.pings.isEmpty, "no PING at an address taken from a stranger")
        XCTAssertEqual(h.nacks.map(\.0), [Probe(probeID: 79, target: NodeID(high: 0xBAD, low: 1))], "a NACK at once: the requester's path works")
        XCTAssertEqual(h.sent.count, 1)
        XCTAssertTrue(h.peer.relays.isEmpty)
    }
}
