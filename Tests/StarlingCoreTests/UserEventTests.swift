@testable import StarlingCore
import XCTest

/// User events (issue 18, user events; Protocol.md §3.6, §6.7): delivered exactly once per
/// (origin, sequence) under loss and duplication, Lamport-stamped, repaired by the origin's
/// re-sends on the quick re-ask schedule, acknowledged with paced CONTROL_REPLYs, and
/// remembered in a bounded table.
final class UserEventTests: XCTestCase {
    let ms = PeerHarness.ms
    let origin = NodeID(high: 0xE0, low: 1)

    func delivered(_ h: PeerHarness) -> [(name: String, payload: String, origin: String, sequence: UInt32, stamp: UInt64)] {
        h.events.compactMap { event in
            if case .userEvent(let name, let payload, let origin, _, let sequence, let stamp) = event { (name, payload, origin, sequence, stamp) } else { nil }
        }
    }

    func acks(_ h: PeerHarness, _ requestID: UInt32) -> [ControlReply] {
        h.sent.compactMap { if case .controlReply(let reply) = $0.0.payload, reply.requestID == requestID { reply } else { nil } }
    }

    func userEvents(_ h: PeerHarness) -> [(UserEvent, Destination)] {
        h.sent.compactMap { if case .userEvent(let event) = $0.0.payload { (event, $0.1) } else { nil } }
    }

    /// issue 18 (user events): every copy is acknowledged, only the first is delivered.
    func testAReceiverDeliversEachEventOnceAndAcknowledgesEveryCopy() {
        var h = PeerHarness()
        h.start()
        _ = h.join(2)
        h.clearSent()
        let event = UserEvent(requestID: 70, sequence: 1, stamp: 500, name: "deploy", payload: "v2")
        for _ in 0..<4 { h.receive(.userEvent(event), from: origin, name: "origin", stamp: 501, port: 9999) }
        XCTAssertEqual(delivered(h).count, 1)
        XCTAssertEqual(delivered(h).first?.name, "deploy")
        XCTAssertEqual(delivered(h).first?.payload, "v2")
        XCTAssertEqual(delivered(h).first?.origin, "origin")
        XCTAssertEqual(delivered(h).first?.stamp, 500, "the event's own stamp, not the copy's header")
        XCTAssertEqual(acks(h, 70).count, 4, "a small view answers at once, every copy")
        XCTAssertEqual(h.peer.counters.drops["user_event_repeat"], 3)
        XCTAssertGreaterThan(h.peer.clock.value, 501, "the copy's header adjusts the clock (§4.2)")
        // Another sequence of the same origin, and the same sequence of another origin, are new.
        h.receive(.userEvent(UserEvent(requestID: 71, sequence: 2, stamp: 600, name: "deploy", payload: "")), from: origin, name: "origin", port: 9999)
        h.receive(.userEvent(event), from: NodeID(high: 0xE0, low: 2), name: "other", port: 9998)
        XCTAssertEqual(delivered(h).map(\.sequence), [1, 2, 1])
    }

    /// issue 18 (user events): the origin delivers to itself, stamps the event below its
    /// copies, multicasts once and re-sends to the silent members only, until all acknowledged.
    func testTheOriginResendsToSilentMembersUntilAllAcknowledge() throws {
        var h = PeerHarness()
        h.start()
        let members = h.join(3)
        h.clearSent()
        let clockBefore = h.peer.clock.value
        let sent = try XCTUnwrap(h.peer.sendUserEvent("deploy", payload: "v3", now: h.time))
        h.record(sent.actions)
        XCTAssertEqual(sent.event.stamp, clockBefore + 1)
        XCTAssertEqual(delivered(h).map(\.origin), [h.peer.config.name], "delivered here first")
        let first = userEvents(h)
        XCTAssertEqual(first.count, 1)
        XCTAssertEqual(first.first?.1, .group)
        XCTAssertTrue(h.sent.allSatisfy { $0.0.header.stamp > sent.event.stamp })
        h.clearSent()
        // Member 0 acknowledges; 1 and 2 stay silent (their copy was lost).
        h.advance(1 * ms)
        h.receive(.controlReply(ControlReply(requestID: sent.requestID, status: .ok, memberCount: 4, page: 0, pageCount: 1,
            body: Array("{\"name\":\"f0\"}".utf8))), from: members[0], name: "f0", port: h.port(of: members[0]))
        h.advance(10 * ms)
        let resent = userEvents(h)
        XCTAssertFalse(resent.isEmpty, "re-sent within a few round trips")
        XCTAssertEqual(Set(resent.map(\.1)), Set(members[1...].map { .peer(Endpoint(address: PeerHarness.loopback, port: h.port(of: $0))) }))
        XCTAssertTrue(resent.allSatisfy { $0.0 == sent.event }, "the same event, same sequence and stamp")
        for member in members[1...] {
            h.receive(.controlReply(ControlReply(requestID: sent.requestID, status: .ok, memberCount: 4, page: 0, pageCount: 1,
                body: Array("{\"name\":\"x\"}".utf8))), from: member, name: h.name(of: member), port: h.port(of: member))
        }
        XCTAssertTrue(h.events.contains { if case .requestFinished(sent.requestID, .allReplied, 3, _) = $0 { true } else { false } })
        h.clearSent()
        h.advance(500 * ms)
        XCTAssertTrue(userEvents(h).isEmpty, "nothing more once all acknowledged")
    }

    /// issue 18 (user events): at size the first acknowledgement waits within the pacing
    /// window (§6.5), a repeat is answered at once.
    func testAcknowledgementsArePacedAtSize() {
        var h = PeerHarness()
        h.start()
        _ = h.join(299)
        h.clearSent()
        let event = UserEvent(requestID: 72, sequence: 1, stamp: 9, name: "n", payload: "")
        h.receive(.userEvent(event), from: origin, name: "origin", port: 9999)
        XCTAssertEqual(delivered(h).count, 1, "delivered at once")
        XCTAssertTrue(acks(h, 72).isEmpty, "the acknowledgement is held back")
        h.advance(ReplyPacing.window(responders: 300))
        XCTAssertEqual(acks(h, 72).count, 1)
        h.clearSent()
        h.receive(.userEvent(event), from: origin, name: "origin", port: 9999)
        XCTAssertEqual(acks(h, 72).count, 1, "a repeat at once")
        XCTAssertEqual(delivered(h).count, 1)
    }

    /// issue 18 (user events): the table holds at most `UserEventLog.limit` pairs; beyond it
    /// the oldest is forgotten (counted) and its sequence stays below the origin's floor, so a
    /// late copy is never delivered twice.
    func testTheDeduplicationTableIsBoundedAndNeverRedelivers() {
        var out = Outbox(config: PeerConfig(name: "t", id: NodeID(high: 1, low: 1)), clock: LamportClock(value: 0), firstRequestID: 1)
        var log = UserEventLog()
        let a = NodeID(high: 0xA, low: 0)
        for sequence in 1...UInt32(UserEventLog.limit) { XCTAssertTrue(log.record(origin: a, sequence: sequence, now: 1, out: &out)) }
        XCTAssertEqual(log.count, UserEventLog.limit)
        XCTAssertNil(out.counters.drops["user_events_full"])
        XCTAssertTrue(log.record(origin: a, sequence: UInt32(UserEventLog.limit) + 1, now: 2, out: &out))
        XCTAssertEqual(log.count, UserEventLog.limit, "bounded")
        XCTAssertEqual(out.counters.drops["user_events_full"], 1, "counted")
        XCTAssertFalse(log.record(origin: a, sequence: 1, now: 3, out: &out), "forgotten, but below the floor: not again")
        XCTAssertFalse(log.record(origin: a, sequence: 2, now: 3, out: &out), "still remembered")
        // Many origins: at most `limit` of them, the longest idle forgotten first.
        for index in 0..<UInt64(UserEventLog.limit + 10) { _ = log.record(origin: NodeID(high: 0xB, low: index), sequence: 1, now: 4, out: &out) }
        XCTAssertLessThanOrEqual(log.origins.count, UserEventLog.limit + 1)
        XCTAssertEqual(log.count, UserEventLog.limit)
        // After the memory every pair is forgotten; an origin's floor is kept as long again.
        log.prune(now: 4 + UserEventLog.memory, out: &out)
        XCTAssertEqual(log.count, 0)
        XCTAssertFalse(log.record(origin: NodeID(high: 0xB, low: 20), sequence: 1, now: 5 + UserEventLog.memory, out: &out), "below the floor")
        log.prune(now: 5 + 2 * UserEventLog.memory, out: &out)
        XCTAssertTrue(log.origins.isEmpty)
    }

    /// issue 18 (user events): out of order (a lost copy re-sent later) is still delivered.
    func testOutOfOrderSequencesAreDelivered() {
        var out = Outbox(config: PeerConfig(name: "t", id: NodeID(high: 1, low: 1)), clock: LamportClock(value: 0), firstRequestID: 1)
        var log = UserEventLog()
        XCTAssertTrue(log.record(origin: origin, sequence: 3, now: 1, out: &out))
        XCTAssertTrue(log.record(origin: origin, sequence: 1, now: 2, out: &out))
        XCTAssertTrue(log.record(origin: origin, sequence: 2, now: 3, out: &out))
        XCTAssertFalse(log.record(origin: origin, sequence: 3, now: 4, out: &out))
    }

    /// issue 18 (user events): names and payloads outside the limits are refused by the API,
    /// the encoder and the decoder.
    func testLimits() throws {
        var h = PeerHarness()
        h.start()
        XCTAssertNil(h.peer.sendUserEvent("", payload: "", now: h.time))
        XCTAssertNil(h.peer.sendUserEvent(String(repeating: "n", count: 65), payload: "", now: h.time))
        XCTAssertNil(h.peer.sendUserEvent("a,b", payload: "", now: h.time))
        XCTAssertNil(h.peer.sendUserEvent("a\u{7}", payload: "", now: h.time))
        XCTAssertNil(h.peer.sendUserEvent("n", payload: String(repeating: "p", count: 1_025), now: h.time))
        XCTAssertNotNil(h.peer.sendUserEvent(String(repeating: "n", count: 64), payload: String(repeating: "p", count: 1_024), now: h.time))
        let codec = Codec()
        let header = Header(sequence: 1, stamp: 1, sender: origin, incarnation: 0, replyPort: 1, cluster: "starling", name: "x")
        XCTAssertThrowsError(try codec.encode(Message(header: header, payload: .userEvent(UserEvent(requestID: 1, sequence: 0, stamp: 1, name: "n", payload: "")))))
        XCTAssertThrowsError(try codec.encode(Message(header: header, payload: .userEvent(UserEvent(requestID: 1, sequence: 1, stamp: .max, name: "n", payload: "")))))
        // The biggest event fits one datagram with the longest cluster and name, and a tag.
        let big = Header(sequence: 1, stamp: 1, sender: origin, incarnation: 0, replyPort: 1,
            cluster: String(repeating: "c", count: 32), name: String(repeating: "m", count: 64))
        let bytes = try Codec(keys: [AuthKey(Array(repeating: 1, count: 32))]).encode(Message(header: big,
            payload: .userEvent(UserEvent(requestID: 1, sequence: 1, stamp: 1, name: String(repeating: "é", count: 32), payload: String(repeating: "é", count: 512)))))
        XCTAssertLessThanOrEqual(bytes.count, Limits.maxDatagram)
    }

    /// issue 18 (user events): codec round trips of generated events.
    func testUserEventsRoundTrip() throws {
        var rng = SplitMix64(seed: 18)
        let codec = Codec()
        for _ in 0..<500 {
            let name = String((0..<Int(rng.next() % 64 + 1)).map { _ in Character(Unicode.Scalar(UInt8(0x21 + rng.next() % 0x5D)).escapingComma) })
            let payload = String((0..<Int(rng.next() % 1_025)).map { _ in Character(Unicode.Scalar(UInt8(0x20 + rng.next() % 0x5F))) })
            let event = UserEvent(requestID: UInt32(truncatingIfNeeded: rng.next()), sequence: UInt32(truncatingIfNeeded: rng.next()) | 1,
                stamp: rng.next() >> 1, name: name, payload: payload)
            let message = Message(header: Header(sequence: 1, stamp: 2, sender: origin, incarnation: 0, replyPort: 3, cluster: "starling", name: "x"),
                payload: .userEvent(event))
            XCTAssertEqual(try codec.decode(try codec.encode(message)), message)
        }
    }
}

private extension Unicode.Scalar {
    /// Commas are not allowed in names: a generated one becomes a dot.
    var escapingComma: Unicode.Scalar { self == "," ? "." : self }
}
