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
}
