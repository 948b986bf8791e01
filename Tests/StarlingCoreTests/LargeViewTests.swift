@testable import StarlingCore
import XCTest

/// Issue 16 (Protocol.md A.2 item 4, §6.1.2): a view too large for one MEMBERS sequence (255
/// pages) reaches a newcomer whole, each of its three responders sending its part.
final class LargeViewTests: XCTestCase {
    /// A harness whose view holds `ids` (30-byte names: about 21 entries a page, so 255 pages
    /// hold about 5,400 members).
    func responder(holding ids: [NodeID]) -> PeerHarness {
        var h = PeerHarness()
        h.start()
        for (index, id) in ids.enumerated() {
            let name = "member-" + String(repeating: "x", count: 18) + String(100_000 + index)
            h.peer.membership.store(Member(id: id, name: name, endpoint: Endpoint(address: 0x7F00_0002, port: UInt16(10_000 + index % 50_000)),
                incarnation: 0, status: .alive, lastHeard: h.now, statusSince: h.now), for: id)
        }
        return h
    }

    /// Ids spread over the id space (its first 8 bytes decide a member's part, §6.1.2).
    func spread(_ range: Range<Int>) -> [NodeID] {
        range.map { NodeID(high: UInt64($0) &* 0x9E37_79B9_7F4A_7C15, low: UInt64($0)) }
    }

    /// What `h` sends a newcomer as responder `share` (nil: its whole view): ids and pages.
    func sent(by h: inout PeerHarness, share: (index: Int, of: Int)?) throws -> (ids: Set<NodeID>, pages: Int) {
        h.peer.membership.sendMembers(to: Endpoint(address: 0x7F00_0003, port: 9999), replyWanted: false, share: share, out: &h.peer.outbox)
        var ids = Set<NodeID>()
        var pages = 0
        for case .send(let bytes, _) in h.peer.outbox.take() {
            guard case .members(let page) = try h.codec.decode(bytes).payload else { continue }
            pages += 1
            ids.formUnion(page.entries.map(\.id))
        }
        return (ids, pages)
    }

    func testThreeRespondersTogetherSendAViewBeyond255Pages() throws {
        let count = 12_000
        var h = responder(holding: spread(0..<count))
        let whole = try sent(by: &h, share: nil)
        XCTAssertEqual(whole.pages, 255, "one sequence is cut at 255 pages")
        XCTAssertLessThan(whole.ids.count, count + 1)
        var union = Set<NodeID>()
        for index in 0..<3 {
            let part = try sent(by: &h, share: (index, 3))
            XCTAssertLessThanOrEqual(part.pages, 255)
            XCTAssertTrue(part.ids.contains(h.peer.config.id), "every part starts with the responder itself")
            union.formUnion(part.ids)
        }
        XCTAssertEqual(union.count, count + 1, "the three parts hold every member and the responders")
    }

    /// §6.1.2: responders whose views differ (a cold start) still send every member they all
    /// hold between them. Cut by rank in each one's view, one holding 600 more members low in
    /// id order cut its third at other ids: 200 common members were in no part (at 10,000
    /// simulated peers started over 10 s, views were still incomplete 60 s after).
    func testRespondersWithDifferentViewsLeaveNoCommonMemberOut() throws {
        let common = spread(0..<12_000)
        let extra = (0..<600).map { NodeID(high: UInt64($0), low: 1 << 40 | UInt64($0)) }
        var small = responder(holding: common)
        var large = responder(holding: extra + common)
        var union = try sent(by: &small, share: (0, 3)).ids
        union.formUnion(try sent(by: &large, share: (1, 3)).ids)
        union.formUnion(try sent(by: &small, share: (2, 3)).ids)
        XCTAssertTrue(Set(common).isSubset(of: union), "\(Set(common).subtracting(union).count) common members in no part")
        XCTAssertEqual(Membership.part(of: NodeID(high: 0, low: 9), parts: 3), 0)
        XCTAssertEqual(Membership.part(of: NodeID(high: .max, low: 0), parts: 3), 2)
        XCTAssertEqual(Membership.part(of: NodeID(high: 1 << 63, low: 0), parts: 3), 1)
    }

    /// A view's pages are counted by the rule that cuts them (``PagePacker``), so that a
    /// responder builds only its part of a view beyond 255 pages: names of varied lengths, a
    /// few members with tags listed, views around the 255-page cut.
    func testThePageCountIsThatOfThePagesCut() throws {
        for count in [0, 1, 20, 5_000, 5_400, 6_000] {
            var h = responder(holding: spread(0..<count))
            for index in stride(from: 0, to: count, by: 97) {
                let id = h.peer.members.values[index].id
                h.peer.membership.tagRecords[id] = TagRecord(incarnation: 0, tags: try MemberTags(["role": String(repeating: "r", count: index % 40 + 1)]))
            }
            let membership = h.peer.membership, out = h.peer.outbox
            let own = membership.ownEntry(incarnation: 0)
            let entries = [own] + membership.members.values.map { $0.entry() }
            XCTAssertEqual(membership.pageCount(own, membership.members.values.lazy.map { $0.entry() }, out: out),
                membership.pages(entries, out: out).count, "\(count) members")
        }
        XCTAssertEqual(paginate([3, 3, 3, 9, 1], budget: 6, maxPerPage: 2) { $0 }, [[3, 3], [3], [9], [1]])
    }

    /// §6.6: a peer told to expect 10,000 members admits a burst of 5,000, then 2,500 a second:
    /// a cold start of 10,000 over 10 s brings 1,000 a second, which 256 a second had not
    /// admitted 60 s later. The default is kept without the hint (or with a small one), and a
    /// hint past the view's bound counts only up to the bound.
    func testTheExpectedSizeRaisesTheAdmissionRate() {
        let ms = PeerHarness.ms
        func admitted(expected: Int, members: Int = 16_384, first: Int, second: Int) -> (Int, Int, UInt64) {
            var h = PeerHarness.started { $0.expectedMembers = expected; $0.limits.members = members }
            for index in 0..<first { h.ping(from: NodeID(high: 0x300, low: UInt64(index)), name: "n-\(index)") }
            let atFirst = h.peer.members.count
            h.now += 1_000 * ms
            for index in first..<(first + second) { h.ping(from: NodeID(high: 0x300, low: UInt64(index)), name: "n-\(index)") }
            return (atFirst, h.peer.members.count, h.peer.counters.drops["admission_limited"] ?? 0)
        }
        let hinted = admitted(expected: 10_000, first: 6_000, second: 3_000)
        XCTAssertEqual(hinted.0, 5_000, "burst expected / 2")
        XCTAssertEqual(hinted.1, 5_000 + 2_500, "then expected / 4 a second")
        XCTAssertEqual(hinted.2, 1_000 + 500)
        let plain = admitted(expected: 0, first: 3_000, second: 2_000)
        XCTAssertEqual(plain.0, 1_024)
        XCTAssertEqual(plain.1, 1_024 + 256)
        let small = admitted(expected: 1_000, first: 3_000, second: 2_000)
        XCTAssertEqual(small.0, 1_024, "a hint below the defaults keeps them")
        XCTAssertEqual(small.1, 1_024 + 256)
        let bounded = admitted(expected: 60_000, members: 4_000, first: 3_000, second: 2_000)
        XCTAssertEqual(bounded.0, 2_000, "the hint counts up to the view's bound: 4,000 / 2")
        XCTAssertEqual(bounded.1, 2_000 + 1_000)
    }
}
