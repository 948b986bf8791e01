@testable import StarlingCore
import XCTest

/// Protocol.md §6.1.2: a responder that answered a newcomer's ANNOUNCE sends it, 5 s later,
/// the members it admitted since. In a cold start of 2,000 within 0.5 s, pairs where a
/// later starter did not know an earlier one stayed missing (340 five seconds after the first
/// start, 114 at 37.5 s): the responders' answer lacked the members still in their waiting
/// rooms, and only push-pull slices told the newcomer of them afterwards.
final class ViewUpdateTests: XCTestCase {
    let ms = PeerHarness.ms

    /// MEMBERS pages sent to `port` since `mark`, their entries' ids; push-pull slices and
    /// whole views (which carry the sender's own entry first) are left out unless `all`.
    func membersSent(_ h: PeerHarness, to port: UInt16, since mark: Int, all: Bool = false) -> [[NodeID]] {
        h.sent[mark...].compactMap {
            guard case .members(let page) = $0.0.payload, case .peer(let to) = $0.1, to.port == port,
                  all || page.entries.first?.id != h.peer.config.id else { return nil }
            return page.entries.map(\.id)
        }
    }

    func testANewcomerIsSentTheMembersItsResponderAdmittedAfterItsAnswer() {
        var h = PeerHarness.started()
        let before = h.join(1)[0]
        let newcomer = NodeID(high: 0x900, low: 77)
        let port: UInt16 = 9_770
        h.fakes[port] = (newcomer, "late")
        h.advance(10 * ms, silent: [])
        let mark = h.sent.count
        h.receive(.announce(Announcement(memberCount: 1, revoked: .empty)), from: newcomer, name: "late", port: port)
        XCTAssertEqual(membersSent(h, to: port, since: mark, all: true).count, 1, "answered at once")
        h.advance(1_000 * ms, silent: [])
        // A member admitted after the answer (on this small ring the peer stays a responder).
        let after = NodeID(high: 0x900, low: 88)
        h.fakes[9_880] = (after, "after")
        h.ping(from: after, name: "after", port: 9_880)
        let answered = h.sent.count
        h.advance(3_900 * ms, silent: [])
        XCTAssertEqual(membersSent(h, to: port, since: answered), [], "not before 5 s")
        h.advance(200 * ms, silent: [])
        let update = membersSent(h, to: port, since: answered)
        XCTAssertEqual(update, [[after]], "only what came after the answer, once (\(before) was in it)")
        // It sent news, so another follows 5 s later with what came since; then, with no
        // news, nothing more.
        let later = NodeID(high: 0x900, low: 99)
        h.fakes[9_990] = (later, "later")
        h.ping(from: later, name: "later", port: 9_990)
        let first = h.sent.count
        h.advance(5_000 * ms, silent: [])
        XCTAssertEqual(membersSent(h, to: port, since: first), [[later]])
        let second = h.sent.count
        h.advance(30_000 * ms, silent: [])
        XCTAssertEqual(membersSent(h, to: port, since: second), [])
        XCTAssertTrue(h.peer.membership.viewUpdates.isEmpty)
    }

    func testNothingIsSentWhenNoMemberCameSince() {
        let (first, _, port) = announced(counting: 1)
        var h = first
        let answered = h.sent.count
        h.advance(6_000 * ms, silent: [])
        XCTAssertEqual(membersSent(h, to: port, since: answered), [])
        XCTAssertTrue(h.peer.membership.viewUpdates.isEmpty)
    }

    /// Forged ANNOUNCEs cannot grow the table: 64 pending at most, the rest counted.
    func testPendingUpdatesAreBounded() {
        // Without multicast every member answers an ANNOUNCE (it came to a seed).
        var h = PeerHarness.started {
            $0.multicast = false
            $0.seeds = [Endpoint(address: PeerHarness.loopback, port: 9_100)]
        }
        for index in 0..<80 {
            h.receive(.announce(Announcement(memberCount: 1, revoked: .empty)), from: NodeID(high: 0x300, low: UInt64(index)),
                name: "n\(index)", port: UInt16(30_000 + index))
        }
        XCTAssertEqual(h.peer.membership.viewUpdates.count, Membership.viewUpdateLimit)
        XCTAssertEqual(h.peer.counters.drops["view_updates_full"], UInt64(80 - Membership.viewUpdateLimit))
    }

    /// A newcomer repeats its ANNOUNCE twice (§6.1.2). A repeat that already counts as many
    /// live members as the responder's view is not answered with the whole view again, and
    /// no answer schedules a second update; a repeat that counts fewer is answered again.
    func testARepeatedAnnounceIsAnsweredAgainOnlyWhileTheNewcomerCountsFewerMembers() {
        let (first, newcomer, port) = announced(counting: 1)
        var h = first
        XCTAssertEqual(membersSent(h, to: port, since: 0, all: true).count, 1, "answered at once")
        var mark = h.sent.count
        let live = h.peer.membership.liveCount
        XCTAssertEqual(live, 4, "this peer, two members and the newcomer")
        // A page was lost: the newcomer still counts fewer than this view.
        h.receive(.announce(Announcement(memberCount: UInt16(live - 1), revoked: .empty)), from: newcomer, name: "late", port: port)
        XCTAssertEqual(membersSent(h, to: port, since: mark, all: true).count, 1, "answered again")
        // The answers reached it.
        mark = h.sent.count
        h.receive(.announce(Announcement(memberCount: UInt16(live), revoked: .empty)), from: newcomer, name: "late", port: port)
        XCTAssertEqual(membersSent(h, to: port, since: mark, all: true), [], "not sent the view a third time")
        XCTAssertEqual(h.peer.membership.viewUpdates.map(\.newcomer), [newcomer], "one update pending, from the first answer")
    }

    /// Only an answered newcomer's count is trusted: a first ANNOUNCE that claims a full view
    /// (a peer that restarted with a new id keeps nothing) is answered all the same.
    func testAFirstAnnounceIsAnsweredWhateverItCounts() {
        let (h, _, port) = announced(counting: .max)
        XCTAssertEqual(membersSent(h, to: port, since: 0, all: true).count, 1)
    }

    /// A peer with two members that heard a newcomer's first ANNOUNCE, `counting` members; what
    /// it sent before is cleared.
    func announced(counting: UInt16) -> (PeerHarness, NodeID, UInt16) {
        var h = PeerHarness.started()
        _ = h.join(2)
        let newcomer = NodeID(high: 0x900, low: 77)
        let port: UInt16 = 9_770
        h.fakes[port] = (newcomer, "late")
        h.advance(10 * ms, silent: [])
        h.clearSent()
        h.receive(.announce(Announcement(memberCount: counting, revoked: .empty)), from: newcomer, name: "late", port: port)
        return (h, newcomer, port)
    }
}
