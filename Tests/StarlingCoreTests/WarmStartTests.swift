import StarlingCore
import XCTest

/// ``Peer/startWarm(view:now:)``, the simulator's warm start (issue 16): the view is taken as a
/// converged cluster's, and nothing is sent or emitted for it.
final class WarmStartTests: XCTestCase {
    let ms = PeerHarness.ms

    func entry(_ k: UInt64, status: MemberStatus = .alive, ip: IPAddress = IPAddress(ipv4: 0x7F00_0100)) -> MemberEntry {
        MemberEntry(id: NodeID(high: 0x900, low: k), incarnation: UInt32(k), status: status,
            endpoint: Endpoint(ip: ip, port: UInt16(10_000 + k)), name: "n\(k)")
    }

    func testTakesEachLiveEntryOnceAndSaysNothing() {
        var h = PeerHarness()
        let me = MemberEntry(id: h.peer.config.id, incarnation: 0, status: .alive,
            endpoint: Endpoint(ip: IPAddress(ipv4: PeerHarness.loopback), port: 9000), name: "me")
        let view = [entry(1), entry(2), entry(1), entry(3, status: .suspect), entry(4, status: .dead),
                    entry(5, status: .left), me, entry(6, ip: IPAddress(high: 0xFD00 << 48, low: 6))]
        h.record(h.peer.startWarm(view: view, now: h.time))
        XCTAssertEqual(Set(h.peer.members.keys), Set([1, 2, 3].map { NodeID(high: 0x900, low: $0) }),
            "live entries once; not this peer, the dead, the departed or another family")
        XCTAssertTrue(h.peer.members.values.allSatisfy { $0.status == .alive && $0.isPublished })
        XCTAssertEqual(h.peer.members[NodeID(high: 0x900, low: 2)]?.incarnation, 2)
        XCTAssertEqual(h.peer.publishedCount, 3)
        XCTAssertEqual(h.peer.liveCount, 4)
        XCTAssertFalse(h.peer.holdsNewcomersBack)
        XCTAssertTrue(h.peer.isSynced, "the mingle counts as done")
        XCTAssertTrue(h.sent.isEmpty, "no ANNOUNCE, HELLO or gossip")
        XCTAssertTrue(h.events.isEmpty, "no joined, searching or synced")
        // Probing runs from the start: each member (answering) is probed within its round.
        for k in [1, 2, 3] as [UInt64] { h.fakes[UInt16(10_000 + k)] = (NodeID(high: 0x900, low: k), "n\(k)") }
        h.advance(5 * 200 * ms + 1, silent: [])
        let probed = Set(h.sent.compactMap { if case .ping(let ping) = $0.0.payload { ping.target } else { nil } })
        XCTAssertEqual(probed, Set(h.peer.members.keys))
        XCTAssertFalse(h.sent.contains { $0.0.payload.type == .announce || $0.0.payload.type == .hello })
    }

    func testStaysWithinTheViewsBound() {
        var h = PeerHarness { $0.limits.members = 2 }
        h.record(h.peer.startWarm(view: (1...5).map { entry($0) }, now: h.time))
        XCTAssertEqual(h.peer.members.count, 2)
        XCTAssertEqual(h.peer.publishedCount, 2)
        XCTAssertEqual(h.peer.liveCount, 3)
    }
}
