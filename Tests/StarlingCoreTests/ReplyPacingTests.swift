@testable import StarlingCore
import XCTest

/// Control at size (issue 16, Protocol.md §6.5): replies to a request that many agents answer
/// are spread over a window that grows with their number, and the requester waits that much longer.
final class ReplyPacingTests: XCTestCase {
    let ms = PeerHarness.ms
    let cli = NodeID(high: 0xC11, low: 1)

    func testTheWindowGrowsWithTheRespondersBeyondTheFreeOnes() {
        XCTAssertEqual(ReplyPacing.window(responders: 0), 0)
        XCTAssertEqual(ReplyPacing.window(responders: 64), 0, "64 replies fit any receive buffer")
        XCTAssertEqual(ReplyPacing.window(responders: 65), 50_000)
        XCTAssertEqual(ReplyPacing.window(responders: 1_064), 50 * ms)
        XCTAssertEqual(ReplyPacing.window(responders: 10_000), 496_800_000)
        XCTAssertEqual(ReplyPacing.window(responders: Int.max), 1_000 * ms, "capped at a second")
        XCTAssertEqual(ReplyPacing.window(responders: -5), 0)
    }

    func testRespondersCountLiteralNamesAndEveryoneForPatterns() {
        XCTAssertEqual(ReplyPacing.responders(target: "", liveCount: 500), 500)
        XCTAssertEqual(ReplyPacing.responders(target: "web-1", liveCount: 500), 1)
        XCTAssertEqual(ReplyPacing.responders(target: "web-1,web-2,db", liveCount: 500), 3)
        XCTAssertEqual(ReplyPacing.responders(target: "web-1,web-2,db", liveCount: 2), 2)
        XCTAssertEqual(ReplyPacing.responders(target: "web-*", liveCount: 500), 500)
        XCTAssertEqual(ReplyPacing.responders(target: "db,web-?", liveCount: 500), 500)
    }

    /// A peer among 300 live members (window 11.8 ms) holds its reply back for a random part of
    /// the window; a repeat of the request is answered at once from the kept reply.
    func testAWideRequestIsAnsweredWithinTheWindowAndItsRepeatAtOnce() {
        var h = PeerHarness()
        h.start()
        _ = h.join(299)
        XCTAssertEqual(h.peer.liveCount, 300)
        let window = ReplyPacing.window(responders: 300)
        h.clearSent()
        let request = ControlRequest(requestID: 9, command: "ping", target: "", args: [])
        let sentAt = h.now
        h.receive(.controlRequest(request), from: cli, name: "cli", port: 20_000)
        // Pacing delays are drawn per peer: this seed's first one is not zero.
        XCTAssertTrue(replies(h).isEmpty, "held back")
        XCTAssertLessThan(h.peer.nextDeadline, sentAt + window)
        h.advance(window)
        XCTAssertEqual(replies(h).count, 1, "sent within the window")
        h.clearSent()
        h.receive(.controlRequest(request), from: cli, name: "cli", port: 20_000)
        XCTAssertEqual(replies(h).count, 1, "a repeat is answered at once")
    }

    /// A request naming this peer alone is answered at once whatever the view's size.
    func testARequestToOneNameIsNotPaced() {
        var h = PeerHarness(name: "web-1")
        h.start()
        _ = h.join(299)
        h.clearSent()
        h.receive(.controlRequest(ControlRequest(requestID: 3, command: "ping", target: "web-1", args: [])), from: cli, name: "cli", port: 20_000)
        XCTAssertEqual(replies(h).count, 1)
    }

    /// Held-back replies count against the requester's answer budget when they are held, so that
    /// pacing opens no way around the budget (§6.6).
    func testPacedRepliesAreChargedToTheAnswerBudgetAtOnce() {
        var h = PeerHarness {
            $0.limits.answerBytesBurst = 256 << 10
            $0.settleInterval = 0 // the 299 in `members` at once (§6.1.8)
        }
        h.start()
        _ = h.join(299)
        h.clearSent()
        for id in 1...200 as ClosedRange<UInt32> {
            h.receive(.controlRequest(ControlRequest(requestID: id, command: "members", target: "", args: [])), from: cli, name: "cli", port: 20_000)
        }
        XCTAssertGreaterThan(h.peer.counters.drops["rate_limited"] ?? 0, 180, "the budget ran out while the replies were still held")
        h.advance(1_000 * ms)
        let pages = h.sent.filter { $0.1 == .peer(Endpoint(address: PeerHarness.loopback, port: 20_000)) }.count
        // One `members` reply of 300 rows is 36 pages; uncharged, all 200 would have gone out.
        XCTAssertLessThan(pages, 400, "only what the budget allowed was sent")
    }

    /// At most 1,024 replies are held back; beyond that a reply goes out at once, counted (§6.6).
    func testHeldRepliesAreBounded() {
        var h = PeerHarness()
        h.start()
        _ = h.join(299)
        h.clearSent()
        for id in 1...1_100 as ClosedRange<UInt32> {
            h.receive(.controlRequest(ControlRequest(requestID: id, command: "ping", target: "", args: [])), from: cli, name: "cli", port: 20_000)
        }
        XCTAssertEqual(h.peer.responder.paced.count, Responder.pacedReplyLimit)
        XCTAssertEqual(h.peer.counters.drops["paced_full"], 1_100 - UInt64(Responder.pacedReplyLimit))
        XCTAssertEqual(replies(h).count, 1_100 - Responder.pacedReplyLimit, "the others went out at once")
        h.advance(ReplyPacing.window(responders: 300))
        XCTAssertEqual(replies(h).count, 1_100)
        XCTAssertTrue(h.peer.responder.paced.isEmpty)
    }

    /// A member requester among 300 waits the responders' window longer before it asks the
    /// silent members again (its quick re-asks and its idle timeout both).
    func testTheRequesterStretchesItsIdleTimeoutByTheWindow() {
        var h = PeerHarness()
        h.start()
        let members = h.join(299)
        let (id, actions) = h.peer.request("ping", options: RequestOptions(idleTimeout: 100 * ms, deadline: 5_000 * ms), now: h.time)
        h.record(actions)
        let window = ReplyPacing.window(responders: 300)
        let body = "{\"name\":\"f0\"}"
        h.receive(.controlReply(ControlReply(requestID: id, status: .ok, memberCount: 300, page: 0, pageCount: 1, body: Array(body.utf8))),
            from: members[0], name: "f0", port: h.port(of: members[0]))
        XCTAssertEqual(h.peer.requester.requests[id]?.pacing, window)
        // The first reply came at once: the first quick re-ask is 2 ms (the floor) past the window.
        h.advance(2 * ms + window - 1)
        XCTAssertEqual(retries(h), 0, "still waiting within the window")
        h.advance(2)
        XCTAssertEqual(retries(h), 298, "then the silent members are asked again")
    }

    private func retries(_ h: PeerHarness) -> Int {
        h.sent.filter { if case .controlRequest = $0.0.payload, case .peer = $0.1 { true } else { false } }.count
    }

    private func replies(_ h: PeerHarness) -> [ControlReply] {
        h.sent.compactMap { if case .controlReply(let reply) = $0.0.payload { reply } else { nil } }
    }
}
