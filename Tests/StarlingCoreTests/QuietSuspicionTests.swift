@testable import StarlingCore
import XCTest

/// Protocol.md §6.1.5: a member accused again within 20 periods of coming back from a
/// suspicion is accused by gossip alone, no CHANGE, so that a node at heavy loss, suspected
/// and refuted over and over, does not cost every node a multicast for each round (issue 16).
/// Confirmations and its death still go by multicast.
final class QuietSuspicionTests: XCTestCase {
    let ms = PeerHarness.ms

    /// CHANGE multicasts that carry `target` with `status`.
    func changes(_ h: PeerHarness, about target: NodeID, _ status: MemberStatus) -> Int {
        h.changes.filter { $0.0.contains { $0.id == target && $0.status == status } }.count
    }

    /// Advances period by period, `target` silent, until this peer holds it suspect.
    func advanceUntilSuspect(_ h: inout PeerHarness, _ target: NodeID) {
        for _ in 0..<40 where h.peer.members[target]?.status != .suspect { h.advance(200 * ms, silent: [target]) }
    }

    /// A peer with five fake members that accused the first one it probed, by multicast.
    func accused(_ configure: (inout PeerConfig) -> Void = { _ in }) throws -> (h: PeerHarness, target: NodeID, fakes: [NodeID]) {
        var h = PeerHarness(configure: configure)
        h.start()
        let fakes = h.join(5)
        h.clearSent()
        h.advance(200 * ms)
        let target = try XCTUnwrap(h.pings.first).target
        h.advance(200 * ms, silent: [target])
        XCTAssertEqual(h.peer.members[target]?.status, .suspect)
        XCTAssertEqual(changes(h, about: target, .suspect), 1, "a first accusation is multicast")
        return (h, target, fakes)
    }

    /// ``accused(_:)``, then the member refutes (alive at incarnation 1). Returns the member
    /// and when it refuted.
    func accusedAndRefuted(_ configure: (inout PeerConfig) -> Void = { _ in }) throws
        -> (h: PeerHarness, target: NodeID, fakes: [NodeID], refutedAt: UInt64) {
        var (h, target, fakes) = try accused(configure)
        h.change([h.entry(target, .alive, 1)], from: target)
        XCTAssertEqual(h.peer.members[target]?.status, .alive)
        XCTAssertEqual(h.peer.members[target]?.revived, true)
        h.clearSent()
        return (h, target, fakes, h.now)
    }

    func testASuspicionSoonAfterARefutationIsGossipedAndItsDeathMulticast() throws {
        var (h, target, _, refutedAt) = try accusedAndRefuted()
        advanceUntilSuspect(&h, target)
        XCTAssertEqual(h.peer.members[target]?.status, .suspect)
        XCTAssertLessThan(h.now - refutedAt, 20 * 200 * ms, "within the quiet window")
        XCTAssertEqual(h.peer.suspicions[target]?.accused, true)
        XCTAssertEqual(changes(h, about: target, .suspect), 0, "suspected again soon: no CHANGE")
        h.advance(200 * ms, silent: [target])
        XCTAssertTrue(h.pings.contains { $0.piggyback.contains { $0.id == target && $0.status == .suspect && $0.incarnation == 1 } },
            "the suspicion is gossiped")
        // Never answering, it is dead at the suspicion's timeout and last chance, and the
        // death goes to the group as any other.
        h.advance(3_000 * ms, silent: [target])
        XCTAssertEqual(h.peer.members[target]?.status, .dead)
        XCTAssertEqual(changes(h, about: target, .dead), 1)
    }

    func testAfterTheQuietWindowAnAccusationIsMulticastAgain() throws {
        var (h, target, _, refutedAt) = try accusedAndRefuted()
        // It answers every probe for the whole window, then falls silent.
        h.advance(20 * 200 * ms, silent: [])
        XCTAssertEqual(h.peer.members[target]?.status, .alive)
        advanceUntilSuspect(&h, target)
        XCTAssertEqual(h.peer.members[target]?.status, .suspect)
        XCTAssertGreaterThanOrEqual(h.now - refutedAt, 20 * 200 * ms)
        XCTAssertEqual(changes(h, about: target, .suspect), 1, "outside the window: multicast")
    }

    /// A suspicion this peer heard of (by gossip) about a member that came back soon before:
    /// its own failed probe confirms it, by multicast as for any suspicion, so that a member
    /// crashing right after a bad spell is found as fast as any other (gossiping confirmations
    /// too made 7 of 8 such crashes take 3.8 to 4.8 s instead of 0.45 to 1.4 s at 2,000
    /// simulated peers).
    func testAConfirmationOfAQuietSuspicionIsStillMulticast() throws {
        // A long suspicion (9 s), so that this peer's own probe of the suspect (within two
        // rounds, 12 periods) comes before its timeout.
        var (h, target, fakes, _) = try accusedAndRefuted { $0.suspicionBeta = 30 }
        let gossiper = try XCTUnwrap(fakes.first { $0 != target })
        h.ping(from: gossiper, name: h.name(of: gossiper), gossip: [h.entry(target, .suspect, 1)], port: h.port(of: gossiper))
        XCTAssertEqual(h.peer.members[target]?.status, .suspect)
        XCTAssertEqual(h.peer.suspicions[target]?.accused, false)
        XCTAssertEqual(changes(h, about: target, .suspect), 0)
        for _ in 0..<12 where h.peer.suspicions[target]?.suspicion.confirmers.contains(h.peer.config.id) != true {
            h.advance(200 * ms, silent: [target])
        }
        XCTAssertEqual(h.peer.suspicions[target]?.suspicion.confirmers, [h.peer.config.id], "its own failed probe confirms")
        XCTAssertEqual(changes(h, about: target, .suspect), 1, "in its own name, to the group")
    }

    /// Any comeback from a suspicion opens the window, not only a refutation: here a datagram
    /// from the suspect at the incarnation suspected (it never learned of the suspicion).
    func testAComebackByADatagramFromTheSuspectOpensTheWindow() throws {
        var (h, target, _) = try accused()
        h.ping(from: target, name: h.name(of: target), port: h.port(of: target))
        XCTAssertEqual(h.peer.members[target]?.status, .alive)
        XCTAssertEqual(h.peer.members[target]?.incarnation, 0, "revived at the incarnation suspected")
        XCTAssertEqual(h.peer.members[target]?.revived, true)
        h.clearSent()
        let cameBackAt = h.now
        advanceUntilSuspect(&h, target)
        XCTAssertEqual(h.peer.members[target]?.status, .suspect)
        XCTAssertLessThan(h.now - cameBackAt, 20 * 200 * ms, "within the quiet window")
        XCTAssertEqual(changes(h, about: target, .suspect), 0, "suspected again soon: no CHANGE")
    }

    /// Only a comeback from a suspicion opens the window: a member that raised its incarnation
    /// while held alive (a change of tags, or a refutation this peer never needed) is accused
    /// by multicast.
    func testAnIncarnationRaisedWhileAliveOpensNoWindow() throws {
        var h = PeerHarness()
        h.start()
        let fakes = h.join(5)
        for fake in fakes { h.change([h.entry(fake, .alive, 3)], from: fake) }
        XCTAssertTrue(fakes.allSatisfy { h.peer.members[$0]?.revived == false })
        h.clearSent()
        h.advance(200 * ms)
        let target = try XCTUnwrap(h.pings.last).target
        advanceUntilSuspect(&h, target)
        XCTAssertEqual(h.peer.members[target]?.status, .suspect)
        XCTAssertEqual(changes(h, about: target, .suspect), 1)
    }
}
