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

    func testEndsEarlyWhenEveryExpectedMemberReplied() throws {
        // A requester that is not a member (the CLI) learns from the replies how many to expect.
        var requester = ControlRequester(config: PeerConfig(name: "cli", id: NodeID(high: 99, low: 1)))
        let now = Now(nanos: 1_000_000_000, wallMillis: 1_800_000_000_000)
        let (id, _) = requester.request("ping", now: now)
        var ends: [RequestEnd] = []
        for (sequence, (node, name)) in [(a, "a"), (b, "b")].enumerated() {
            let header = Header(sequence: UInt64(sequence + 1), stamp: 1, sender: node, incarnation: 0, replyPort: 9100, cluster: "starling", name: name)
            let reply = ControlReply(requestID: id, status: .ok, memberCount: 2, page: 0, pageCount: 1, body: Array("{}".utf8))
            let bytes = try Codec().encode(Message(header: header, payload: .controlReply(reply)))
            XCTAssertTrue(ends.isEmpty)
            for case .emit(.requestFinished(_, let reason, _, _)) in requester.onDatagram(bytes, from: Endpoint(address: 0x7F00_0001, port: 9100), now: now) {
                ends.append(reason)
            }
        }
        XCTAssertEqual(ends, [.allReplied], "the replies said two members exist")
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
        // More ids than one request carries: several revokes, as Agent.revoke sends them.
        for batch in h.peer.requestBatches((0..<200).map { "task-\($0)-" + String(repeating: "x", count: 30) }, command: "revoke") {
            h.record(h.peer.revoke(batch, now: h.time).1)
        }
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

    func testTargetsFilterByNameGlob() {
        var h = PeerHarness(name: "web-1")
        h.start()
        h.clearSent()
        h.receive(.controlRequest(ControlRequest(requestID: 1, command: "ping", target: "db-*", args: [])), from: a, name: "cli")
        XCTAssertTrue(h.sent.isEmpty)
        h.receive(.controlRequest(ControlRequest(requestID: 2, command: "ping", target: "db-1,web-?", args: [])), from: a, name: "cli")
        XCTAssertEqual(h.sent.count, 1)
    }

    func testADuplicateRequestRunsOnceAndIsAnsweredAgainFromTheFirstReply() {
        var h = PeerHarness(name: "web-1")
        h.start()
        h.clearSent()
        let request = ControlRequest(requestID: 7, command: "revoke", target: "", args: ["task-1"])
        h.receive(.controlRequest(request), from: a, name: "cli")
        h.receive(.controlRequest(request), from: a, name: "cli")
        let replies = h.sent.compactMap { if case .controlReply(let reply) = $0.0.payload { reply } else { nil } }
        XCTAssertEqual(replies.count, 2, "the retry is answered")
        XCTAssertEqual(replies[0], replies[1], "with the first run's reply")
        let revokedEvents = h.events.filter { if case .revoked = $0 { true } else { false } }
        XCTAssertEqual(revokedEvents.count, 1, "the command ran once")
        // Another requester's request with the same id is a different request.
        h.receive(.controlRequest(request), from: b, name: "cli-2")
        XCTAssertEqual(h.sent.count, 3)
        // A command with effects is remembered for twice the request window (60 s), then forgotten.
        h.advance(59_000 * ms)
        h.receive(.controlRequest(request), from: a, name: "cli")
        XCTAssertEqual(h.events.filter { if case .revoked = $0 { true } else { false } }.count, 2, "still remembered after 59 s (a's run and b's)")
        h.advance(2_001 * ms)
        h.clearSent()
        h.receive(.controlRequest(request), from: a, name: "cli")
        XCTAssertEqual(h.sent.count, 1)
        XCTAssertEqual(h.events.filter { if case .revoked = $0 { true } else { false } }.count, 3, "forgotten after 61 s: it runs (no key, so no window)")
    }

    func testMissingPagesAreAskedForAgainAtTheIdleTimeout() {
        var h = PeerHarness()
        let (id, actions) = h.peer.request("stats", options: RequestOptions(expected: 1, idleTimeout: 100 * ms, deadline: 2_000 * ms), now: h.time)
        h.record(actions)
        h.clearSent()
        reply(&h, id, from: a, name: "a", page: 0, of: 2, body: "{\"hello\":\"")
        h.advance(101 * ms)
        XCTAssertTrue(finished(h).isEmpty, "a retry, not the end")
        let retries = h.sent.filter { if case .controlRequest(let request) = $0.0.payload { request.requestID == id } else { false } }
        XCTAssertEqual(retries.count, 1)
        XCTAssertEqual(retries.first?.1, .peer(Endpoint(address: 0x7F00_0001, port: 9100)), "by unicast to the responder")
        reply(&h, id, from: a, name: "a", page: 1, of: 2, body: "world\"}")
        XCTAssertEqual(finished(h), [.allReplied])
        // A responder that never sends the rest: two retries, then the idle end.
        h.events.removeAll()
        h.clearSent()
        let (other, more) = h.peer.request("stats", options: RequestOptions(expected: 1, idleTimeout: 100 * ms, deadline: 2_000 * ms), now: h.time)
        h.record(more)
        reply(&h, other, from: a, name: "a", page: 0, of: 2, body: "{")
        h.advance(350 * ms)
        XCTAssertEqual(h.sentPayloads().filter { if case .controlRequest = $0 { true } else { false } }.count, 1 + 2)
        XCTAssertEqual(finished(h), [.idle])
    }

    func testAMemberAsksTheLiveMembersThatHaveNotAnswered() {
        var h = PeerHarness()
        h.start()
        for (node, port) in [(a, UInt16(9100)), (b, 9200)] {
            h.receive(.ping(Ping(probeID: 1, target: h.peer.config.id, revoked: .empty)), from: node, name: "n\(port)", port: port)
        }
        let (id, actions) = h.peer.request("ping", options: RequestOptions(idleTimeout: 100 * ms, deadline: 2_000 * ms), now: h.time)
        h.record(actions)
        reply(&h, id, from: a, name: "n9100", members: 3)
        h.clearSent()
        h.advance(101 * ms)
        let retries = h.sent.filter { if case .controlRequest = $0.0.payload { true } else { false } }
        // Quick re-asks 2, 6, 14, 30 and 62 ms after the request (the first reply's round trip
        // was 0: the 2 ms floor, doubling; §6.5).
        XCTAssertEqual(retries.map(\.1), Array(repeating: .peer(Endpoint(address: 0x7F00_0001, port: 9200)), count: 5), "only the silent member")
        h.receive(.controlReply(ControlReply(requestID: id, status: .ok, memberCount: 3, page: 0, pageCount: 1, body: Array("{}".utf8))), from: b, name: "n9200", port: 9200)
        XCTAssertEqual(finished(h), [.allReplied])
    }

    func testShutdownIsRefusedWithoutAKey() {
        var h = PeerHarness(name: "web-1")
        h.start()
        h.clearSent()
        h.receive(.controlRequest(ControlRequest(requestID: 1, command: "shutdown", target: "web-1", args: [])), from: a, name: "cli")
        guard case .controlReply(let reply)? = h.sentPayloads().first else { return XCTFail("no reply") }
        XCTAssertEqual(reply.status, .refused)
    }

    func testLongArgumentListsAreSplitIntoRequestsThatFit() throws {
        for keys in [[], [AuthKey(Array(repeating: 1, count: 32))]] {
            let h = PeerHarness { $0.keys = keys }
            let ids = (0..<500).map { "d9b1f8a2-5c1e-4f5e-9a51-\(String(100_000_000_000 + $0))" } + (0..<100).map { "\($0 % 10)" }
            let batches = h.peer.requestBatches(ids, command: "revoke")
            XCTAssertEqual(batches.flatMap { $0 }, ids, "every id, in order")
            XCTAssertGreaterThan(batches.count, 10)
            for batch in batches {
                XCTAssertLessThanOrEqual(batch.count, Limits.maxArgs)
                let message = Message(header: Header(sequence: 1, stamp: 1, sender: h.peer.config.id, incarnation: 0, replyPort: 1,
                    cluster: h.peer.config.cluster, name: h.peer.config.name),
                    payload: .controlRequest(ControlRequest(requestID: 1, command: "revoke", target: "", args: batch)))
                XCTAssertNoThrow(try h.codec.encode(message), "a batch of \(batch.count) does not fit")
            }
            // Short ids fill 64 arguments before the datagram is full.
            XCTAssertEqual(h.peer.requestBatches((0..<100).map { "\($0 % 10)" }, command: "revoke").map(\.count), [64, 36])
        }
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
