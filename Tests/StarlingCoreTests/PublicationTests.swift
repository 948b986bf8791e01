import StarlingCore
import XCTest

/// Protocol.md §6.1.8: newcomers enter the published view (`joined`, ``Peer/publishedMembers``)
/// together, once none came for the settle interval, at the latest `publishWithin` after the
/// first held back; every other change of a published member shows at once.
final class PublicationTests: XCTestCase {
    let ms = PeerHarness.ms

    /// Fake member `k` pings the peer from its own port and name, and answers its PINGs.
    func newcomer(_ h: inout PeerHarness, _ k: Int, high: UInt64 = 0x900) -> NodeID {
        let id = NodeID(high: high, low: UInt64(k)), port = UInt16(10_000 + k)
        h.fakes[port] = (id, "n\(k)")
        h.ping(from: id, name: "n\(k)", port: port)
        return id
    }

    func joined(_ h: PeerHarness) -> [NodeID] {
        h.events.compactMap { if case .joined(_, let id, _, _) = $0 { id } else { nil } }
    }

    func testNewcomersArePublishedTogetherOnceTheySettle() {
        var h = PeerHarness.started()
        let settle = h.peer.config.settleInterval
        XCTAssertEqual(settle, 300 * ms, "two periods of the agent's 150 ms")
        var ids: [NodeID] = []
        for index in 0..<3 {
            ids.append(newcomer(&h, index, high: 0x900 + UInt64(2 - index)))
            h.advance(100 * ms, silent: [])
        }
        XCTAssertEqual(h.peer.members.count, 3, "the working view takes each at once")
        XCTAssertTrue(joined(h).isEmpty, "none published while they keep coming")
        XCTAssertTrue(h.peer.publishedMembers.isEmpty)
        XCTAssertTrue(h.peer.holdsNewcomersBack)
        // The last came 100 ms ago: published `settle` after it.
        h.advance(settle - 100 * ms - 1, silent: [])
        XCTAssertTrue(joined(h).isEmpty)
        h.advance(1, silent: [])
        XCTAssertEqual(joined(h), ids.sorted(), "all three at once, in id order")
        XCTAssertEqual(h.peer.publishedCount, 3)
        XCTAssertEqual(Set(h.peer.publishedMembers.map(\.id)), Set(ids))
        XCTAssertFalse(h.peer.holdsNewcomersBack)
        let rows = h.peer.memberRows(now: h.time)
        XCTAssertEqual(rows.count, 4, "`members` lists this peer and the three")
    }

    func testASteadyTrickleIsPublishedWithinTheBound() {
        var h = PeerHarness.started()
        let within = h.peer.config.publishWithin
        let first = h.now
        var heard = 0
        // One newcomer every 200 ms: never 300 ms without one.
        while h.now < first + within {
            _ = newcomer(&h, heard)
            heard += 1
            h.advance(200 * ms, silent: [])
            if h.now < first + within { XCTAssertTrue(joined(h).isEmpty, "held back at +\((h.now - first) / ms) ms") }
        }
        XCTAssertEqual(joined(h).count, heard, "all heard by then, published \(within / ms) ms after the first")
        _ = newcomer(&h, heard)
        h.advance(h.peer.config.settleInterval, silent: [])
        XCTAssertEqual(joined(h).count, heard + 1, "the next batch settles on its own")
    }

    func testDeathsOfPublishedMembersShowAtOnceAndUnpublishedOnesPassUnseen() {
        var h = PeerHarness.started { $0.reapAfter = 2_000 * PeerHarness.ms }
        let alice = NodeID(high: 1, low: 1), bob = NodeID(high: 2, low: 2), carol = NodeID(high: 3, low: 3)
        h.fakes[9100] = (alice, "alice")
        h.ping(from: alice, name: "alice", port: 9100)
        h.advance(h.peer.config.settleInterval, silent: [])
        XCTAssertEqual(joined(h), [alice])
        h.fakes[9200] = (bob, "bob")
        h.ping(from: bob, name: "bob", port: 9200)
        h.ping(from: carol, name: "carol", port: 9300)
        // bob declares alice and carol dead; the second CHANGE makes each dead (§6.1.3).
        for _ in 0..<2 {
            h.change([h.entry(alice, .dead), MemberEntry(id: carol, incarnation: 0, status: .dead,
                endpoint: Endpoint(address: PeerHarness.loopback, port: 9300), name: "carol")], from: bob)
        }
        XCTAssertEqual(h.peer.members[alice]?.status, .dead)
        XCTAssertEqual(h.peer.members[carol]?.status, .dead)
        XCTAssertEqual(h.statusChanges(to: .dead).count, 1, "alice's death shows at once, carol's not: \(h.statusChanges(to: .dead))")
        XCTAssertTrue(h.events.contains(.statusChanged(name: "alice", id: alice, from: .suspect, to: .dead)))
        h.advance(2_100 * ms, silent: [])
        XCTAssertEqual(joined(h), [alice, bob], "carol died before she was published: never shown")
        XCTAssertTrue(h.events.contains(.reaped(name: "alice", id: alice)))
        XCTAssertFalse(h.events.contains { if case .reaped(_, carol) = $0 { true } else { false } })
        XCTAssertNil(h.peer.members[carol])
    }

    func testARestartTakesItsOldEntrysPlaceAtOnce() {
        var h = PeerHarness.started()
        let alice = NodeID(high: 1, low: 1), reborn = NodeID(high: 1, low: 99)
        h.ping(from: alice, name: "alice")
        h.advance(h.peer.config.settleInterval, silent: [])
        h.ping(from: reborn, name: "alice")
        XCTAssertTrue(h.events.contains(.replaced(name: "alice", old: alice, new: reborn)))
        XCTAssertEqual(joined(h), [alice, reborn], "the view does not grow: nothing to settle")
        XCTAssertEqual(h.peer.publishedMembers.map(\.id), [reborn])
    }

    func testARestartOfAMemberNeverPublishedIsNotAReplacement() {
        var h = PeerHarness.started()
        let alice = NodeID(high: 1, low: 1), reborn = NodeID(high: 1, low: 99)
        h.ping(from: alice, name: "alice")
        h.ping(from: reborn, name: "alice")
        XCTAssertFalse(h.events.contains { $0.kind == "replaced" }, "the old id was never shown")
        h.advance(h.peer.config.settleInterval, silent: [])
        XCTAssertEqual(joined(h), [reborn])
    }

    func testAMemberSuspectWhenPublishedIsSaidSuspectAfterItsJoin() {
        var h = PeerHarness.started()
        let alice = NodeID(high: 1, low: 1), bob = NodeID(high: 2, low: 2)
        h.fakes[9200] = (bob, "bob")
        h.ping(from: bob, name: "bob", port: 9200)
        h.ping(from: alice, name: "alice")
        h.change([h.entry(alice, .suspect)], from: bob)
        XCTAssertEqual(h.peer.members[alice]?.status, .suspect)
        XCTAssertFalse(h.events.contains { $0.kind == "suspect" }, "held back: unseen")
        h.advance(h.peer.config.settleInterval, silent: [alice])
        let shown = h.events.filter { $0.kind == "joined" || $0.kind == "suspect" || $0.kind == "dead" }
        XCTAssertEqual(Array(shown.prefix(3)), [
            .joined(name: "alice", id: alice, endpoint: Endpoint(address: PeerHarness.loopback, port: 9100)),
            .statusChanged(name: "alice", id: alice, from: .alive, to: .suspect),
            .joined(name: "bob", id: bob, endpoint: Endpoint(address: PeerHarness.loopback, port: 9200)),
        ])
    }

    /// A full view makes room by forgetting a departed member early (§6.6): said as `reaped`,
    /// so that a later entry about it is a new `joined` after a `reaped`, not a second one.
    func testAPublishedMemberForgottenForRoomIsReaped() {
        var h = PeerHarness.started { $0.limits.members = 2 }
        let alice = newcomer(&h, 1), bob = newcomer(&h, 2)
        h.advance(h.peer.config.settleInterval, silent: [])
        XCTAssertEqual(joined(h), [alice, bob])
        h.receive(.goodbye, from: alice, name: "n1", port: 10_001)
        _ = newcomer(&h, 3)
        XCTAssertNil(h.peer.members[alice])
        XCTAssertTrue(h.events.contains(.reaped(name: "n1", id: alice)))
        XCTAssertEqual(h.peer.publishedCount, 1, "bob; the newcomer is held back")
    }

    /// A large batch is published 256 per tick, the ticks 1 µs apart:
    /// thousands of events in one tick left flooded agents at twice their memory.
    func testALargeBatchIsPublishedInSlicesAtTheSameMoment() {
        var h = PeerHarness.started()
        for index in 0..<600 { h.ping(from: NodeID(high: 0x700, low: UInt64(index)), name: "b\(index)", port: UInt16(20_000 + index)) }
        h.now += h.peer.config.settleInterval
        h.record(h.peer.onTick(now: h.time))
        XCTAssertEqual(joined(h).count, 256, "one slice per tick")
        XCTAssertEqual(h.peer.nextDeadline, h.now + 1_000, "the rest 1 µs later (a timer left due would spin the loop)")
        h.advance(2_000)
        XCTAssertEqual(joined(h).count, 600)
        XCTAssertEqual(joined(h), joined(h).sorted(), "in id order across the slices")
        XCTAssertFalse(h.peer.holdsNewcomersBack)
    }

    func testTagsOfANewcomerHeldBackComeWithItsJoin() throws {
        var h = PeerHarness.started()
        let id = NodeID(high: 0x77, low: 1)
        let web = try MemberTags(["role": "web"]), db = try MemberTags(["role": "db"])
        let ping = Payload.ping(Ping(probeID: 1, target: h.peer.config.id, revoked: h.peer.revoked.digest, piggyback: []))
        h.receive(ping, from: id, name: "w", incarnation: 1, extensions: web.extensions)
        h.receive(ping, from: id, name: "w", incarnation: 2, extensions: db.extensions)
        XCTAssertFalse(h.events.contains { $0.kind == "tags" || $0.kind == "joined" })
        h.advance(h.peer.config.settleInterval)
        XCTAssertEqual(h.events.filter { $0.kind == "joined" },
            [.joined(name: "w", id: id, endpoint: Endpoint(address: PeerHarness.loopback, port: 9100), tags: db)])
    }

    func testWithoutASettleIntervalEachNewcomerIsPublishedAsItComes() {
        var h = PeerHarness.started { $0.settleInterval = 0 }
        let ids = h.join(2)
        XCTAssertEqual(joined(h), ids)
        XCTAssertEqual(h.peer.publishedCount, 2)
        XCTAssertFalse(h.peer.holdsNewcomersBack)
    }

    /// `stats` and `/metrics` read the published view by status from one count: newcomers
    /// held back are not in it, this peer is counted alive.
    func testThePublishedViewIsCountedByStatusOnce() throws {
        var h = PeerHarness.started()
        let fakes = h.join(5)
        XCTAssertEqual(h.peer.publishedByStatus, [1, 0, 0, 0], "held back until they settle")
        h.advance(1_000 * PeerHarness.ms, silent: [])
        XCTAssertEqual(h.peer.publishedByStatus, [6, 0, 0, 0])
        h.receive(.goodbye, from: fakes[0], name: h.name(of: fakes[0]), port: h.port(of: fakes[0]))
        XCTAssertEqual(h.peer.publishedByStatus, [5, 0, 0, 1])
        let members = try XCTUnwrap(h.peer.stats(now: h.time)["members"])
        XCTAssertEqual(["alive", "suspect", "dead", "left"].map { members[$0]?.numberValue }, [5, 0, 0, 1])
    }
}
