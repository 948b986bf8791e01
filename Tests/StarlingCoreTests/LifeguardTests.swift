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

    /// A recovery is the first answered probe after the score rose to a bad spell (half the
    /// maximum); a dip below that is none. One spell gives one recovery: the spell ends only
    /// when the score falls below it again, so a score hovering high (a link that stays bad,
    /// or refutations forced by forged suspicions) cannot push-pull at every answer (§6.1.4).
    func testLocalHealthReportsOneRecoveryPerBadSpell() {
        var health = LocalHealth()
        for _ in 0..<(LocalHealth.badSpell - 1) { health.note(.probeUnanswered) }
        health.note(.probeAnswered)
        XCTAssertFalse(health.takeRecovery(), "below a bad spell")
        for _ in 0..<LocalHealth.maximum { health.note(.nackMissed) }
        XCTAssertFalse(health.takeRecovery(), "not while nothing is answered")
        health.note(.probeAnswered)
        XCTAssertTrue(health.takeRecovery(), "the first answer after the spell began")
        XCTAssertFalse(health.takeRecovery(), "taken once")
        health.note(.refuted)
        health.note(.probeAnswered)
        XCTAssertFalse(health.takeRecovery(), "still the same spell: the score never fell below it")
        while health.score >= LocalHealth.badSpell { health.note(.probeAnswered) }
        XCTAssertFalse(health.takeRecovery(), "the spell's end is no second recovery")
        while health.score < LocalHealth.badSpell { health.note(.refuted) }
        health.note(.probeAnswered)
        XCTAssertTrue(health.takeRecovery(), "risen again after falling below: a new spell")
    }

    /// A peer back from a bad spell of local health push-pulls at once: its links may have
    /// lost what the others said meanwhile, and theirs what it said. At 5,000 simulated peers,
    /// views stayed apart up to 35 s after 80 % loss ended, healed by push-pull every 18.5 s
    /// (§6.1.4). Without the spell, nothing goes before the interval.
    func testAProbeAnsweredAfterABadSpellPushPullsAtOnce() {
        for spell in [false, true] {
            var h = PeerHarness()
            h.start()
            _ = h.join(3)
            h.advance(1_000 * ms, silent: [])
            if spell { for _ in 0..<LocalHealth.badSpell { h.peer.membership.probing.noteRefuted() } }
            h.clearSent()
            // At a score of 4 a period is 5 T (1 s); the push-pull interval is 5 s from the start.
            h.advance(1_500 * ms, silent: [])
            let slices = h.sentPayloads().filter { if case .members(let page) = $0 { page.replyWanted } else { false } }
            XCTAssertEqual(slices.isEmpty, !spell, spell ? "back from the spell: a slice at once" : "no spell: no slice before the interval")
            guard spell else { continue }
            h.clearSent()
            h.advance(1_500 * ms, silent: [])
            XCTAssertFalse(h.sentPayloads().contains { if case .members(let page) = $0 { page.replyWanted } else { false } }, "once per spell")
        }
    }

    /// A MEMBERS page whose sender is behind on a member (it holds it dead at an incarnation
    /// the member has refuted since) is answered with this peer's fresher entry, so that it
    /// catches up in a round trip; a page with nothing stale gets no such answer (§6.1.4). At
    /// 2,000 simulated peers, peers back from 80 % loss held such verdicts 30 s on: their
    /// partners ignored the stale entries and said nothing.
    func testAStaleEntryInAMembersPageIsAnsweredWithTheFresherOne() throws {
        var h = PeerHarness()
        h.start()
        let fakes = h.join(3)
        let (member, sender) = (fakes[0], fakes[1])
        h.ping(from: member, name: h.name(of: member), incarnation: 1, port: h.port(of: member))
        XCTAssertEqual(h.peer.members[member]?.incarnation, 1)
        func corrections(_ entries: [MemberEntry]) -> [MemberEntry] {
            h.clearSent()
            h.receive(.members(MembersPage(replyWanted: false, page: 0, pageCount: 1, entries: entries)), from: sender,
                name: h.name(of: sender), port: h.port(of: sender))
            return h.sent.flatMap { message, destination -> [MemberEntry] in
                guard case .members(let page) = message.payload, case .peer(let to) = destination, to.port == h.port(of: sender) else { return [] }
                return page.entries
            }
        }
        XCTAssertEqual(corrections([h.entry(member, .dead, 0)]).map { "\($0.status)@\($0.incarnation)" }, ["alive@1"], "behind: told the fresher entry")
        XCTAssertEqual(h.peer.members[member]?.status, .alive, "a stale death changes nothing here")
        XCTAssertEqual(corrections([h.entry(member, .alive, 1), h.entry(fakes[2], .alive, 0)]), [], "nothing stale: no answer")
    }

    func testEveryMemberIsProbedWithinTwoRounds() {
        var rng = SplitMix64(seed: 42)
        var order = ProbeOrder()
        let ids = (0..<50).map { NodeID(high: 2, low: UInt64($0)) }
        for id in ids { order.insert(id, rng: &rng) }
        XCTAssertEqual(order.count, 50)
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

/// Lifeguard's suspicion, witnesses, death and refutation as a whole peer sees them (issue 16).
final class PeerSuspicionTests: XCTestCase {
    let ms = PeerHarness.ms

    /// This peer probes the first member of its round robin, which stays silent (the others
    /// answer, helpers send NACKs), until it suspects it. Returns the suspect.
    func accuseFirstTarget(_ h: inout PeerHarness) throws -> NodeID {
        h.clearSent()
        h.advance(200 * ms)
        let target = try XCTUnwrap(h.pings.first).target
        h.advance(200 * ms, silent: [target])
        XCTAssertEqual(h.peer.members[target]?.status, .suspect)
        return target
    }

    /// A peer with 5 fake members that accused the first one it probed, and that suspect's
    /// three witnesses (the three after it on the ring, without this peer, the first accuser).
    func accusedWithWitnesses() throws -> (h: PeerHarness, fakes: [NodeID], target: NodeID, witnesses: [NodeID]) {
        var h = PeerHarness()
        h.start()
        let fakes = h.join(5)
        let target = try accuseFirstTarget(&h)
        let witnesses = Ring(fakes + [h.peer.config.id]).successors(of: target, count: 3, excluding: h.peer.config.id)
        return (h, fakes, target, witnesses)
    }

    /// Issue 16: min = α·max(1, log10 n)·T, max = β·min; a lone suspector waits the maximum,
    /// then pings the suspect once more, and again a ping timeout later (nobody confirmed:
    /// perhaps it missed the refutation), and declares it dead when neither PING is answered
    /// three ping timeouts after the first.
    func testALoneAccuserWaitsTheMaximumThenMulticastsTheDeath() throws {
        var h = PeerHarness()
        h.start()
        _ = h.join(5)
        let target = try accuseFirstTarget(&h)
        let held = try XCTUnwrap(h.peer.suspicions[target])
        let bounds = Suspicion.bounds(members: 6, period: 200 * ms, alpha: 1.5, beta: 6)
        XCTAssertEqual([held.suspicion.minimum, held.suspicion.maximum], [300 * ms, 1_800 * ms])
        XCTAssertEqual([held.suspicion.minimum, held.suspicion.maximum], [bounds.minimum, bounds.maximum])
        XCTAssertEqual(held.suspicion.deadline, h.now + 1_800 * ms)
        h.clearSent()
        h.advance(1_800 * ms - 1, silent: [target])
        XCTAssertEqual(h.peer.members[target]?.status, .suspect)
        h.advance(1, silent: [target])
        XCTAssertEqual(h.peer.members[target]?.status, .suspect, "unconfirmed: one last PING first")
        XCTAssertEqual(h.pings.last?.target, target)
        XCTAssertEqual(h.pings.last?.piggyback.first?.id, target, "its suspicion first, so that it can refute")
        let pingsToTarget = { (h: PeerHarness) in h.pings.filter { $0.target == target }.count }
        let first = pingsToTarget(h)
        h.advance(50 * ms - 1, silent: [target])
        XCTAssertEqual(pingsToTarget(h), first)
        h.advance(1, silent: [target])
        XCTAssertEqual(pingsToTarget(h), first + 1, "the second PING, one ping timeout after the first")
        h.advance(100 * ms - 1, silent: [target])
        XCTAssertEqual(h.peer.members[target]?.status, .suspect)
        h.advance(1, silent: [target])
        XCTAssertEqual(h.peer.members[target]?.status, .dead)
        XCTAssertEqual(h.changes.filter { $0.0.contains { $0.id == target } }.map(\.0), [[h.entry(target, .dead)]],
            "the first accuser multicasts the death, once")
    }

    /// Issue 16: distinct first-hand confirmations (CHANGE from other senders) shrink the
    /// timeout; a repeated one and a piggybacked (hearsay) one do not.
    func testOnlyDistinctFirstHandConfirmationsShrinkTheTimeout() throws {
        var h = PeerHarness()
        h.start()
        let fakes = h.join(5)
        let target = try accuseFirstTarget(&h)
        let start = try XCTUnwrap(h.peer.suspicions[target]).suspicion.deadline - 1_800 * ms
        let others = fakes.filter { $0 != target }
        func deadline() -> UInt64? { h.peer.suspicions[target]?.suspicion.deadline }
        h.change([h.entry(target, .suspect)], from: others[0])
        XCTAssertEqual(deadline(), start + 1_050 * ms, "one of three: ln 2 / ln 4 of the way down")
        h.change([h.entry(target, .suspect)], from: others[0])
        XCTAssertEqual(deadline(), start + 1_050 * ms, "the same confirmer twice counts once")
        h.ping(from: others[1], name: h.name(of: others[1]), gossip: [h.entry(target, .suspect)], port: h.port(of: others[1]))
        XCTAssertEqual(deadline(), start + 1_050 * ms, "piggybacked entries are hearsay")
        h.change([h.entry(target, .suspect, 1)], from: others[1])
        XCTAssertEqual(h.peer.suspicions[target]?.incarnation, 1, "a suspicion at a higher incarnation starts again")
        XCTAssertEqual(h.peer.suspicions[target]?.accused, false)
    }

    /// Three distinct confirmations by the suspect's witnesses bring the timeout down to the
    /// minimum; a CHANGE(suspect) from a member that is no witness confirms nothing (§6.1.6:
    /// a member with a bad link of its own suspects everyone). Confirmed or not, the suspect
    /// gets its last chance.
    func testThreeConfirmationsReachTheMinimum() throws {
        var (h, fakes, target, witnesses) = try accusedWithWitnesses()
        let start = try XCTUnwrap(h.peer.suspicions[target]).suspicion.deadline - 1_800 * ms
        let bystander = try XCTUnwrap(fakes.first { $0 != target && !witnesses.contains($0) })
        h.change([h.entry(target, .suspect)], from: bystander)
        XCTAssertEqual(h.peer.suspicions[target]?.suspicion.deadline, start + 1_800 * ms, "no witness: no confirmation")
        for witness in witnesses { h.change([h.entry(target, .suspect)], from: witness) }
        XCTAssertEqual(h.peer.suspicions[target]?.suspicion.deadline, max(start + 300 * ms, h.now))
        h.clearSent()
        h.advance(start + 300 * ms - h.now, silent: [target])
        XCTAssertEqual(h.peer.members[target]?.status, .suspect, "confirmed, but the suspect is asked once more first")
        XCTAssertEqual(h.pings.last?.target, target)
        h.advance(150 * ms - 1, silent: [target])
        XCTAssertEqual(h.peer.members[target]?.status, .suspect)
        h.advance(1, silent: [target])
        XCTAssertEqual(h.peer.members[target]?.status, .dead, "three ping timeouts after the last chance's first PING")
    }

    /// A peer in poor local health gives even a fully confirmed suspicion its last chance: its
    /// own link was bad, so it may have heard the confirmations and missed the refutations
    /// (at 5,000 simulated peers, nodes just back from 80 % loss declared others that had
    /// been lossy with them dead, 2 to 4 s after the loss ended).
    func testAPeerInPoorHealthGivesAConfirmedSuspicionItsLastChance() throws {
        var (h, fakes, target, witnesses) = try accusedWithWitnesses()
        for witness in witnesses { h.change([h.entry(target, .suspect)], from: witness) }
        let deadline = try XCTUnwrap(h.peer.suspicions[target]).suspicion.deadline
        h.advance(deadline - h.now - 1, silent: [target])
        // Suspected itself, this peer refutes: its local health drops.
        h.change([MemberEntry(id: h.peer.config.id, incarnation: h.peer.incarnation, status: .suspect,
            endpoint: Endpoint(address: PeerHarness.loopback, port: 9000), name: "me")], from: fakes[0] == target ? fakes[1] : fakes[0])
        XCTAssertGreaterThan(h.peer.membership.probing.health.score, 0)
        h.clearSent()
        h.advance(1, silent: [target])
        XCTAssertEqual(h.peer.members[target]?.status, .suspect, "three confirmations, but this peer's health is poor: the last chance first")
        XCTAssertEqual(h.pings.last?.target, target)
        XCTAssertEqual(h.pings.last?.piggyback.first?.id, target)
        h.advance(1_000 * ms, silent: [target])
        XCTAssertEqual(h.peer.members[target]?.status, .dead, "unanswered, it is dead")
    }

    /// A suspicion short of its confirmations (one witness of three failed: at 10 % loss, one
    /// witness in five misses a live suspect) is not declared when it runs out: the suspect gets
    /// its last chance, whose second PING it answers (the first was lost), and stays alive. At
    /// 2,000 simulated peers, holders that had missed both copies of the refutation declared
    /// such suspects dead (§6.1.6).
    func testASuspicionShortOfItsConfirmationsGetsTheLastChanceToo() throws {
        var (h, _, target, witnesses) = try accusedWithWitnesses()
        h.change([h.entry(target, .suspect)], from: witnesses[0])
        let deadline = try XCTUnwrap(h.peer.suspicions[target]).suspicion.deadline
        h.clearSent()
        h.advance(deadline - h.now, silent: [target])
        XCTAssertEqual(h.peer.members[target]?.status, .suspect, "one confirmation of three: the last chance first")
        XCTAssertEqual(h.pings.last?.target, target)
        h.advance(50 * ms, silent: [target])
        let second = try XCTUnwrap(h.pings.last)
        XCTAssertEqual(second.target, target, "the second PING")
        h.receive(.ack(Ping(probeID: second.probeID, target: target, revoked: h.peer.revoked.digest)), from: target,
            name: h.name(of: target), incarnation: 1, port: h.port(of: target))
        h.advance(1_000 * ms, silent: [])
        XCTAssertEqual(h.peer.members[target]?.status, .alive)
        XCTAssertFalse(h.changes.contains { $0.0.contains { $0.id == target && $0.status == .dead } })
    }

    /// A last chance short of its confirmations sends its second PING with a PING_REQ to
    /// helpers: the direct path may be the lossy one. A helper's relayed ACK keeps the suspect
    /// alive. At 1,000 simulated peers under 10 % loss, a peer that had missed both copies of a
    /// refutation lost both last-chance ACKs on its one path and declared a live member dead
    /// (§6.1.6). A fully confirmed suspicion asks nobody.
    func testALastChanceShortOfConfirmationsAsksHelpersAndTheirRelayedAckKeepsTheSuspect() throws {
        for confirmed in [false, true] {
            var (h, fakes, target, witnesses) = try accusedWithWitnesses()
            for witness in confirmed ? witnesses : [witnesses[0]] { h.change([h.entry(target, .suspect)], from: witness) }
            let deadline = try XCTUnwrap(h.peer.suspicions[target]).suspicion.deadline
            h.clearSent()
            h.advance(deadline - h.now, silent: [target])
            // This peer's own probes of other members go on meanwhile: only what concerns the suspect counts.
            var pings: [Ping] { h.pings.filter { $0.target == target } }
            var requests: [Probe] { h.pingRequests.map(\.0).filter { $0.target == target } }
            XCTAssertEqual(pings.count, 1, "the last chance's first PING")
            XCTAssertTrue(requests.isEmpty, "helpers only with the second PING")
            h.advance(50 * ms, silent: [target])
            let second = try XCTUnwrap(pings.last)
            XCTAssertEqual(pings.count, 2, "the second PING")
            guard !confirmed else {
                XCTAssertTrue(requests.isEmpty, "all its confirmations: no helper asked")
                continue
            }
            XCTAssertFalse(requests.isEmpty, "short of its confirmations: helpers asked")
            XCTAssertTrue(requests.allSatisfy { $0 == Probe(probeID: second.probeID, target: target) })
            // The ACK comes back from one of the helpers asked.
            let asked = h.pingRequests.compactMap { request -> UInt16? in
                guard request.0.target == target, case .peer(let endpoint) = request.1 else { return nil }
                return endpoint.port
            }
            let helper = try XCTUnwrap(fakes.first { asked.contains(h.port(of: $0)) })
            XCTAssertNotEqual(helper, target, "the suspect is no helper")
            h.receive(.ack(Ping(probeID: second.probeID, target: target, revoked: h.peer.revoked.digest)), from: helper,
                name: h.name(of: helper), port: h.port(of: helper))
            XCTAssertEqual(h.peer.members[target]?.status, .alive, "a relayed ACK is proof of life")
            h.advance(1_000 * ms, silent: [target])
            XCTAssertFalse(h.events.contains { if case .statusChanged(_, target, _, .dead) = $0 { true } else { false } })
        }
    }

    /// A last chance belongs to the suspicion that ran out. The member refutes by multicast
    /// (its ACK lost), is suspected anew within the three ping timeouts, and the old last
    /// chance's verdict must not kill the new suspicion, which has its own timeout and last
    /// chance (§6.1.6).
    func testAnOldLastChanceDoesNotKillANewSuspicion() throws {
        var (h, fakes, target, _) = try accusedWithWitnesses()
        let deadline = try XCTUnwrap(h.peer.suspicions[target]).suspicion.deadline
        h.advance(deadline - h.now, silent: [target])
        XCTAssertEqual(h.peer.suspicions[target]?.lastChance, true)
        h.change([h.entry(target, .alive, 1)], from: target)
        XCTAssertEqual(h.peer.members[target]?.status, .alive, "refuted by multicast")
        let accuser = try XCTUnwrap(fakes.first { $0 != target })
        h.change([h.entry(target, .suspect, 1)], from: accuser)
        XCTAssertEqual(h.peer.members[target]?.status, .suspect, "suspected anew")
        XCTAssertEqual(h.peer.suspicions[target]?.lastChance, false)
        h.advance(200 * ms, silent: [target])
        XCTAssertEqual(h.peer.members[target]?.status, .suspect, "the old last chance's verdict passed: the new suspicion runs on")
    }

    /// A death heard second-hand over a suspicion held at the same incarnation is not adopted:
    /// the suspect may have refuted since (at 5,000 simulated peers, peers back from 80 % loss
    /// adopted a piggybacked death the member had refuted before the loss ended). The
    /// suspicion's own timeout gives the suspect its last chance, and its ACK revives it.
    func testASecondHandDeathOverAHeldSuspicionWaitsForTheLastChance() throws {
        var (h, fakes, target, _) = try accusedWithWitnesses()
        let gossiper = fakes.first { $0 != target }!
        h.ping(from: gossiper, name: h.name(of: gossiper), gossip: [h.entry(target, .dead)], port: h.port(of: gossiper))
        XCTAssertEqual(h.peer.members[target]?.status, .suspect, "hearsay: not adopted")
        let deadline = try XCTUnwrap(h.peer.suspicions[target]).suspicion.deadline
        h.clearSent()
        h.advance(deadline - h.now, silent: [target])
        let ping = try XCTUnwrap(h.pings.last)
        XCTAssertEqual(ping.target, target, "the last chance")
        h.receive(.ack(Ping(probeID: ping.probeID, target: target, revoked: h.peer.revoked.digest)), from: target,
            name: h.name(of: target), incarnation: 1, port: h.port(of: target))
        XCTAssertEqual(h.peer.members[target]?.status, .alive)
        XCTAssertFalse(h.events.contains { if case .statusChanged(_, target, _, .dead) = $0 { true } else { false } })
    }

    /// A member this peer declared dead that others still hold alive at that incarnation
    /// (this peer's links lost most datagrams; nobody else accused it, so nobody tells it) is
    /// told of the verdict when hearsay of its life comes: a PING with its dead entry first,
    /// so that it refutes — once per spell of the verdict in the queue (§6.1.3). At 5,000
    /// simulated peers such views stayed wrong up to 35 s after an 80 % loss ended.
    func testHearsayOfLifeOverADeathVerdictTellsTheMemberOnce() throws {
        for fault in [false, true] {
            var h = PeerHarness { $0.faults = fault ? [.keepStaleVerdicts] : [] }
            h.start()
            let fakes = h.join(5)
            let target = try accuseFirstTarget(&h)
            let witness = Ring(fakes + [h.peer.config.id]).successors(of: target, count: 1, excluding: h.peer.config.id)[0]
            let incarnation = try XCTUnwrap(h.peer.members[target]).incarnation
            h.change([h.entry(target, .dead, incarnation)], from: witness)
            XCTAssertEqual(h.peer.members[target]?.status, .dead)
            // Once the verdict has been piggybacked its λ·log n times, it is no longer queued.
            for _ in 0..<50 where h.peer.dissemination[target] != nil { h.advance(200 * ms, silent: [target]) }
            XCTAssertNil(h.peer.dissemination[target])
            let gossiper = fakes.first { $0 != target && $0 != witness }!
            for round in 0..<2 {
                h.clearSent()
                h.ping(from: gossiper, name: h.name(of: gossiper), gossip: [h.entry(target, .alive, incarnation)], port: h.port(of: gossiper))
                let told = h.pings.filter { $0.target == target }
                XCTAssertEqual(h.peer.members[target]?.status, .dead, "hearsay at the same incarnation does not revive it")
                if fault || round == 1 {
                    XCTAssertEqual(told.count, 0, fault ? "keep-stale-verdicts: nobody is told" : "once per spell of the verdict in the queue")
                } else {
                    XCTAssertEqual(told.count, 1)
                    XCTAssertEqual(told.first?.piggyback.first?.id, target)
                    XCTAssertEqual(told.first?.piggyback.first?.status, .dead)
                    XCTAssertNotNil(h.peer.dissemination[target], "the verdict is gossiped again")
                }
            }
        }
    }

    /// PING_REQs — anyone may send them — fill the relay table just as a suspicion runs out
    /// short of its confirmations: the suspect still gets its last chance, and one answered
    /// PING keeps it alive. The table's bound used to skip the last chance, uncounted (§6.6).
    func testAFullRelayTableDoesNotTakeASuspicionsLastChance() throws {
        var h = PeerHarness(configure: { $0.limits.relays = 2 })
        h.start()
        let fakes = h.join(5)
        let target = try accuseFirstTarget(&h)
        let deadline = try XCTUnwrap(h.peer.suspicions[target]).suspicion.deadline
        h.advance(deadline - h.now - 1, silent: [target])
        let others = fakes.filter { $0 != target }
        for (index, other) in others.prefix(3).enumerated() {
            let requester = others[3]
            h.receive(.pingRequest(Probe(probeID: UInt32(index + 1), target: other)), from: requester, name: h.name(of: requester), port: h.port(of: requester))
        }
        XCTAssertEqual(h.peer.relays.count, 2)
        XCTAssertEqual(h.peer.counters.drops["relays_full"], 1, "the table is full")
        h.clearSent()
        h.advance(1, silent: Set(fakes))
        XCTAssertEqual(h.peer.members[target]?.status, .suspect, "unconfirmed: the last chance, full table or not")
        let ping = try XCTUnwrap(h.pings.last)
        XCTAssertEqual(ping.target, target)
        XCTAssertEqual(h.peer.relays.count, 3, "beyond the table's bound, one per member")
        h.receive(.ack(Ping(probeID: ping.probeID, target: target, revoked: h.peer.revoked.digest)), from: target,
            name: h.name(of: target), incarnation: 1, port: h.port(of: target))
        h.advance(1_000 * ms, silent: [])
        XCTAssertEqual(h.peer.members[target]?.status, .alive)
    }

    /// A view of 10 fakes and, for a suspect and a sender among them, whether this peer is
    /// one of the suspect's 3 witnesses on the ring (the sender, the first accuser, excluded).
    func witnessCase(_ wanted: Bool) -> (PeerHarness, suspect: NodeID, sender: NodeID)? {
        var h = PeerHarness()
        h.start()
        let fakes = h.join(10)
        for suspect in fakes {
            for sender in fakes where sender != suspect {
                let ring = Ring(fakes + [h.peer.config.id])
                if ring.successors(of: suspect, count: 3, excluding: sender).contains(h.peer.config.id) == wanted { return (h, suspect, sender) }
            }
        }
        return nil
    }

    /// Issue 16: only a rendezvous witness pings the suspect at once; it multicasts its own
    /// CHANGE(suspect) only if that ping fails within a period.
    func testAWitnessPingsAtOnceAndConfirmsOnlyIfThePingFails() throws {
        var (h, suspect, sender) = try XCTUnwrap(witnessCase(true))
        h.clearSent()
        h.change([h.entry(suspect, .suspect)], from: sender)
        XCTAssertEqual(h.peer.members[suspect]?.status, .suspect)
        XCTAssertEqual(h.pings.map(\.target), [suspect], "the witness pings at once")
        XCTAssertTrue(h.changes.isEmpty)
        h.advance(200 * ms, silent: [suspect])
        XCTAssertEqual(h.changes.map(\.0), [[h.entry(suspect, .suspect)]], "confirmed in its own name")
        XCTAssertEqual(h.peer.suspicions[suspect]?.suspicion.confirmers, [h.peer.config.id])

        // Same again, but the suspect answers the witness: no CHANGE, and it is alive again.
        var (h2, suspect2, sender2) = try XCTUnwrap(witnessCase(true))
        h2.clearSent()
        h2.change([h2.entry(suspect2, .suspect)], from: sender2)
        h2.answerPings(since: 0)
        h2.advance(400 * ms, silent: [])
        XCTAssertTrue(h2.changes.isEmpty)
        XCTAssertEqual(h2.peer.members[suspect2]?.status, .alive)
    }

    /// Issue 16: a peer that is no witness does not ping the suspect at once, and only the
    /// first accuser multicasts the death.
    func testANonWitnessWaitsAndDoesNotMulticastTheDeath() throws {
        var (h, suspect, sender) = try XCTUnwrap(witnessCase(false))
        h.clearSent()
        h.change([h.entry(suspect, .suspect)], from: sender)
        XCTAssertEqual(h.peer.members[suspect]?.status, .suspect)
        XCTAssertTrue(h.pings.isEmpty, "no witness: no ping at once")
        XCTAssertEqual(h.peer.suspicions[suspect]?.accused, false)
        h.advance(2_000 * ms, silent: [suspect])
        XCTAssertEqual(h.peer.members[suspect]?.status, .dead)
        XCTAssertFalse(h.changes.contains { $0.0.contains { $0.id == suspect && $0.status == .dead } }, "the accuser's word, not ours")
    }

    /// Issue 16: hearing itself suspect, a peer multicasts CHANGE(alive, i + 1) at once and once
    /// more a period later (one lost datagram should not leave a peer to time it out), notes
    /// it in its local health, and piggybacks its own entry after.
    func testRefutationIsMulticastOnceAndNotedInLocalHealth() {
        var h = PeerHarness()
        h.start()
        let fakes = h.join(3)
        let me = h.peer.config.id
        h.clearSent()
        h.change([MemberEntry(id: me, incarnation: 0, status: .suspect, endpoint: Endpoint(address: 0, port: 9000), name: "me")], from: fakes[0])
        XCTAssertEqual(h.peer.incarnation, 1)
        XCTAssertEqual(h.changes.map(\.0), [[MemberEntry(id: me, incarnation: 1, status: .alive, endpoint: Endpoint(address: 0, port: 9000), name: "me")]])
        XCTAssertEqual(h.peer.membership.probing.health.score, 1)
        h.advance(1_000 * ms, silent: [])
        XCTAssertEqual(h.changes.map(\.0), Array(repeating: [MemberEntry(id: me, incarnation: 1, status: .alive, endpoint: Endpoint(address: 0, port: 9000), name: "me")], count: 2),
            "multicast twice, and no more")
        XCTAssertTrue(h.pings.contains { $0.piggyback.contains { $0.id == me && $0.incarnation == 1 } }, "then piggybacked")
        // A stale claim (below the incarnation now held) is not refuted again.
        h.change([MemberEntry(id: me, incarnation: 0, status: .suspect, endpoint: Endpoint(address: 0, port: 9000), name: "me")], from: fakes[1])
        XCTAssertEqual(h.peer.incarnation, 1)
    }
}
