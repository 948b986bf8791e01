import StarlingCore
import XCTest

/// Request/reply collection (Protocol.md §6.5) and command answers.
final class ControlTests: XCTestCase {
    let ms = PeerHarness.ms
    let a = NodeID(high: 10, low: 1)
    let b = NodeID(high: 11, low: 1)

    func reply(_ h: inout PeerHarness, _ id: UInt32, from node: NodeID, name: String, members: UInt16 = 2, page: UInt16 = 0, of count: UInt16 = 1, body: String = "{}") {
        h.receive(.controlReply(ControlReply(requestID: id, status: .ok, memberCount: members, page: page, pageCount: count, body: Array(body.utf8))), from: node, name: name)
    }

    func finished(_ h: PeerHarness) -> [RequestEnd] {
        h.events.compactMap { if case .requestFinished(_, let reason, _, _) = $0 { reason } else { nil } }
    }

    func testEndsEarlyWhenEveryExpectedMemberReplied() {
        var h = PeerHarness()
        let (id, actions) = h.peer.request("ping", now: h.time)
        h.record(actions)
        reply(&h, id, from: a, name: "a")
        XCTAssertTrue(finished(h).isEmpty)
        reply(&h, id, from: b, name: "b")
        XCTAssertEqual(finished(h), [.allReplied], "the replies said two members exist")
    }

    func testLimitIdleAndHardDeadline() {
        var h = PeerHarness()
        var (id, actions) = h.peer.request("ping", options: RequestOptions(limit: 1), now: h.time)
        h.record(actions)
        reply(&h, id, from: a, name: "a", members: 9)
        XCTAssertEqual(finished(h), [.limit])
        h.events.removeAll()
        (id, actions) = h.peer.request("ping", options: RequestOptions(idleTimeout: 100 * ms, deadline: 1_000 * ms), now: h.time)
        h.record(actions)
        reply(&h, id, from: a, name: "a", members: 9)
        h.advance(99 * ms)
        XCTAssertTrue(finished(h).isEmpty)
        h.advance(2 * ms)
        XCTAssertEqual(finished(h), [.idle])
        h.events.removeAll()
        (id, actions) = h.peer.request("ping", options: RequestOptions(idleTimeout: 100 * ms, deadline: 300 * ms), now: h.time)
        h.record(actions)
        h.advance(301 * ms)
        XCTAssertEqual(finished(h), [.deadline], "no reply at all: the hard deadline ends it")
    }

    func testPagedRepliesAreReassembledInAnyOrder() {
        var h = PeerHarness()
        let (id, actions) = h.peer.request("stats", options: RequestOptions(expected: 1), now: h.time)
        h.record(actions)
        reply(&h, id, from: a, name: "a", page: 1, of: 2, body: "world\"}")
        reply(&h, id, from: a, name: "a", page: 1, of: 2, body: "world\"}")
        reply(&h, id, from: a, name: "a", page: 0, of: 2, body: "{\"hello\":\"")
        let bodies = h.events.compactMap { if case .reply(_, _, _, _, let body) = $0 { body } else { nil } }
        XCTAssertEqual(bodies, ["{\"hello\":\"world\"}"])
        XCTAssertEqual(finished(h), [.allReplied])
    }

    func testAgentAnswersByUnicastAndPagesLargeBodies() throws {
        var h = PeerHarness()
        h.start()
        h.record(h.peer.revoke((0..<200).map { "task-\($0)-" + String(repeating: "x", count: 30) }, now: h.time).1)
        h.clearSent()
        h.receive(.controlRequest(ControlRequest(requestID: 4, command: "revoked", target: "", args: [])), from: a, name: "cli", port: 9400)
        let replies = h.sent.compactMap { if case .controlReply(let r) = $0.0.payload { r } else { nil } }
        XCTAssertGreaterThan(replies.count, 3)
        XCTAssertTrue(h.sent.allSatisfy { $0.1 == .peer(Endpoint(address: 0x7F00_0001, port: 9400)) })
        let body = replies.sorted { $0.page < $1.page }.flatMap(\.body)
        let json = try JSON.parse(String(decoding: body, as: UTF8.self))
        XCTAssertEqual(json["count"]?.numberValue, 200)
        XCTAssertEqual(json["ids"]?.arrayValue?.count, 200)
    }

    func testTargetsFilterByNameGlobAndDuplicatesRunOnce() {
        var h = PeerHarness(name: "web-1")
        h.start()
        h.clearSent()
        h.receive(.controlRequest(ControlRequest(requestID: 1, command: "ping", target: "db-*", args: [])), from: a, name: "cli")
        XCTAssertTrue(h.sent.isEmpty)
        h.receive(.controlRequest(ControlRequest(requestID: 2, command: "ping", target: "db-1,web-?", args: [])), from: a, name: "cli")
        h.receive(.controlRequest(ControlRequest(requestID: 2, command: "ping", target: "db-1,web-?", args: [])), from: a, name: "cli")
        XCTAssertEqual(h.sent.count, 1)
    }

    func testShutdownIsRefusedWithoutAKey() {
        var h = PeerHarness(name: "web-1")
        h.start()
        h.clearSent()
        h.receive(.controlRequest(ControlRequest(requestID: 1, command: "shutdown", target: "web-1", args: [])), from: a, name: "cli")
        guard case .controlReply(let reply)? = h.sentPayloads().first else { return XCTFail("no reply") }
        XCTAssertEqual(reply.status, .refused)
    }

    func testGlob() {
        XCTAssertTrue(Glob.matchesTarget("", "anything"))
        XCTAssertTrue(Glob.matchesTarget("web-*", "web-12"))
        XCTAssertTrue(Glob.matchesTarget("a,b?", "bc"))
        XCTAssertFalse(Glob.matchesTarget("web-?", "web-12"))
        XCTAssertTrue(Glob.matches("*a*b", "xxaxxb"))
        XCTAssertFalse(Glob.matches("*a*b", "xxaxxbc"))
    }

    func testJSONParsesWhatItWrites() throws {
        let value = JSON.object([("a", .array([.int(1), .number(2.5), .null, .bool(true)])), ("s", .string("q\"\\\n\u{1}é"))])
        XCTAssertEqual(try JSON.parse(value.serialized()), value)
        XCTAssertEqual(try JSON.parse(value.serialized(pretty: true)), value)
        XCTAssertThrowsError(try JSON.parse("{\"a\":1} x"))
        XCTAssertThrowsError(try JSON.parse("[1,"))
    }
}
