@testable import StarlingCore
import XCTest

/// Quick re-asks (issue 21, Protocol.md §6.5): a member whose request went to every agent asks
/// the silent live members again a few first-reply round trips later, doubling, five times,
/// before the idle timeout.
final class QuickRetryTests: XCTestCase {
    let ms = PeerHarness.ms

    func testSilentMembersAreAskedAgainOnARoundTripSchedule() throws {
        var h = PeerHarness()
        h.start()
        let members = h.join(3)
        let (id, actions) = h.peer.request("ping", options: RequestOptions(idleTimeout: 1_000 * ms, deadline: 5_000 * ms), now: h.time)
        h.record(actions)
        h.clearSent()
        // The first reply after 1 ms: re-asks 4 ms after the request, then 8, 16, 32, 64 ms later.
        h.advance(1 * ms)
        reply(&h, id, from: members[0], members: 4)
        var times: [UInt64] = []
        var silent = Array(members[1...])
        let start = h.now - 1 * ms
        for _ in 0..<400 {
            h.advance(1 * ms)
            let asked = h.sent.filter { if case .controlRequest = $0.0.payload { true } else { false } }
            if !asked.isEmpty {
                times.append((h.now - start) / ms)
                XCTAssertEqual(Set(asked.map(\.1)), Set(silent.map { .peer(Endpoint(address: PeerHarness.loopback, port: h.port(of: $0))) }),
                    "only the silent members")
                h.clearSent()
            }
            if times.count == 2, silent.count == 2 {
                reply(&h, id, from: members[1], members: 4)
                silent = [members[2]]
            }
        }
        // Doubling five times from 4 ms, then every 128 ms.
        XCTAssertEqual(times, [4, 12, 28, 60, 124, 252, 380])
        // The last silent member answers: the request ends.
        reply(&h, id, from: members[2], members: 4)
        XCTAssertTrue(h.events.contains { if case .requestFinished(_, .allReplied, _, _) = $0 { true } else { false } })
    }

    /// The spacing never exceeds 1/16 of the deadline: with no reply (d = 50 ms) and a 3 s
    /// deadline, 32d would be 1.6 s, five re-asks in all, too few at 30 % loss (§6.5).
    func testReAsksComeAtLeastSixteenTimesADeadline() {
        var h = requestToSilentMembers(1, deadline: 3_000 * ms)
        var times: [UInt64] = []
        for _ in 0..<3_000 {
            h.advance(1 * ms)
            if h.sent.contains(where: { if case .controlRequest = $0.0.payload { true } else { false } }) { times.append(h.now / ms) }
            h.clearSent()
        }
        let start = times.first.map { $0 - 50 } ?? 0
        // 50, then 100 and 187.5 (3 s / 16) apart, to the deadline (times rounded up to the 1 ms step).
        XCTAssertEqual(Array(times.prefix(4)).map { $0 - start }, [50, 150, 338, 525])
        XCTAssertEqual(times.count, 17, "where 32d (1.6 s) made it 5")
        XCTAssertTrue(zip(times, times.dropFirst()).allSatisfy { $1 - $0 <= 188 })
    }

    /// A peer with `members` fake members that never answer, right after it sent them a `ping`.
    func requestToSilentMembers(_ members: Int, deadline: UInt64) -> PeerHarness {
        var h = PeerHarness()
        h.start()
        _ = h.join(members)
        let (_, actions) = h.peer.request("ping", options: RequestOptions(idleTimeout: 1_000 * ms, deadline: deadline), now: h.time)
        h.record(actions)
        h.clearSent()
        return h
    }

    func testWithoutAnyReplyTheFirstReAskComesAtTheUpperBound() {
        var h = requestToSilentMembers(2, deadline: 5_000 * ms)
        h.advance(50 * ms - 1)
        XCTAssertTrue(h.sent.isEmpty || !h.sent.contains { if case .controlRequest = $0.0.payload { true } else { false } })
        h.advance(1)
        XCTAssertEqual(h.sent.filter { if case .controlRequest = $0.0.payload { true } else { false } }.count, 2)
    }

    /// A requester that is not a member (the CLI) told who should answer re-asks the silent ones
    /// the same way, and ends as soon as all of them answered.
    func testAClientToldTheRespondersReAsksTheSilentOnes() throws {
        var config = PeerConfig(name: "cli", id: NodeID(high: 0xC11, low: 1))
        config.replyPort = 9999
        var client = ControlRequester(config: config)
        let codec = Codec()
        let a = (NodeID(high: 0xA, low: 1), Endpoint(address: PeerHarness.loopback, port: 9101))
        let b = (NodeID(high: 0xB, low: 1), Endpoint(address: PeerHarness.loopback, port: 9102))
        var options = RequestOptions(idleTimeout: 250 * ms, deadline: 2_000 * ms)
        options.responders = [a.0: a.1, b.0: b.1]
        var now: UInt64 = 1_000 * ms
        func time() -> Now { Now(nanos: now, wallMillis: 1_800_000_000_000) }
        let (id, first) = client.request("revoke", args: ["t"], target: "", to: nil, options: options, now: time())
        XCTAssertEqual(first.compactMap { action -> Destination? in if case .send(_, let d) = action { d } else { nil } }, [.group])
        now += 1 * ms
        let header = Header(sequence: 1, stamp: 1, sender: a.0, incarnation: 0, replyPort: a.1.port, cluster: config.cluster, name: "a")
        let reply = try codec.encode(Message(header: header, payload: .controlReply(ControlReply(requestID: id, status: .ok, memberCount: 2,
            page: 0, pageCount: 1, body: Array("{}".utf8)))))
        _ = client.onDatagram(reply, from: a.1, now: time())
        now = 1_000 * ms + 4 * ms
        let again = client.onTick(now: time()).compactMap { action -> Destination? in if case .send(_, let d) = action { d } else { nil } }
        XCTAssertEqual(again, [.peer(b.1)], "the silent agent, 4 round trips after the request")
        let headerB = Header(sequence: 1, stamp: 1, sender: b.0, incarnation: 0, replyPort: b.1.port, cluster: config.cluster, name: "b")
        let replyB = try codec.encode(Message(header: headerB, payload: .controlReply(ControlReply(requestID: id, status: .ok, memberCount: 2,
            page: 0, pageCount: 1, body: Array("{}".utf8)))))
        let end = client.onDatagram(replyB, from: b.1, now: time())
        XCTAssertTrue(end.contains { if case .emit(.requestFinished(_, .allReplied, 2, _)) = $0 { true } else { false } })
    }

    private func reply(_ h: inout PeerHarness, _ id: UInt32, from node: NodeID, members: UInt16) {
        h.receive(.controlReply(ControlReply(requestID: id, status: .ok, memberCount: members, page: 0, pageCount: 1, body: Array("{}".utf8))),
            from: node, name: h.name(of: node), port: h.port(of: node))
    }
}
