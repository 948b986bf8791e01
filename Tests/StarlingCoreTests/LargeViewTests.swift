@testable import StarlingCore
import XCTest

/// Issue 16 (Protocol.md A.2 item 4, §6.1.2): a view too large for one MEMBERS sequence (255
/// pages) reaches a newcomer whole, each of its three responders sending its part.
final class LargeViewTests: XCTestCase {
    func testThreeRespondersTogetherSendAViewBeyond255Pages() throws {
        var h = PeerHarness()
        h.start()
        let count = 12_000
        for index in 0..<count {
            let id = NodeID(high: 0x7000, low: UInt64(index))
            // 30-byte names: about 21 entries a page, so 255 pages hold about 5,400 members.
            let name = "member-" + String(repeating: "x", count: 18) + String(100_000 + index)
            h.peer.membership.store(Member(id: id, name: name, endpoint: Endpoint(address: 0x7F00_0002, port: UInt16(10_000 + index % 50_000)),
                incarnation: 0, status: .alive, lastHeard: h.now, statusSince: h.now), for: id)
        }
        let newcomer = Endpoint(address: 0x7F00_0003, port: 9999)
        func sent(share: (index: Int, of: Int)?) throws -> (ids: Set<NodeID>, pages: Int) {
            h.peer.membership.sendMembers(to: newcomer, replyWanted: false, share: share, out: &h.peer.outbox)
            var ids = Set<NodeID>()
            var pages = 0
            for case .send(let bytes, _) in h.peer.outbox.take() {
                guard case .members(let page) = try h.codec.decode(bytes).payload else { continue }
                pages += 1
                ids.formUnion(page.entries.map(\.id))
            }
            return (ids, pages)
        }
        let whole = try sent(share: nil)
        XCTAssertEqual(whole.pages, 255, "one sequence is cut at 255 pages")
        XCTAssertLessThan(whole.ids.count, count + 1)
        var union = Set<NodeID>()
        for index in 0..<3 {
            let part = try sent(share: (index, 3))
            XCTAssertLessThanOrEqual(part.pages, 255)
            XCTAssertTrue(part.ids.contains(h.peer.config.id), "every part starts with the responder itself")
            union.formUnion(part.ids)
        }
        XCTAssertEqual(union.count, count + 1, "the three parts hold every member and the responders")
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
