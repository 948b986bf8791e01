import StarlingCore
import XCTest

/// Captured commands replayed later (issue 14 item 25, Protocol.md §7.3): `issued_ms` and the
/// run-once table keep a command with effects from running twice.
final class ControlReplayTests: XCTestCase {
    let ms = PeerHarness.ms
    let key = AuthKey(Array(repeating: 9, count: 32))
    let operatorID = NodeID(high: 70, low: 1)

    func keyed() -> PeerHarness {
        var h = PeerHarness(name: "web-1") { $0.keys = [self.key] }
        h.start()
        return h
    }

    /// A request as an attacker would capture it: whole authenticated datagram bytes.
    func capture(_ h: PeerHarness, _ command: String, args: [String] = [], requestID: UInt32 = 5, sequence: UInt64 = 1) -> [UInt8] {
        let header = Header(sequence: sequence, stamp: 1, sender: operatorID, incarnation: 0, replyPort: 9400, cluster: "starling", name: "cli")
        let request = ControlRequest(requestID: requestID, issuedMillis: h.time.wallMillis, command: command, target: "web-1", args: args)
        return try! h.codec.encode(Message(header: header, payload: .controlRequest(request)))
    }

    func deliver(_ h: inout PeerHarness, _ bytes: [UInt8]) -> (shutdowns: Int, statuses: [ControlStatus]) {
        h.clearSent()
        let actions = h.peer.onDatagram(bytes, from: Endpoint(address: 0x7F00_0001, port: 9400), now: h.time)
        h.record(actions)
        let shutdowns = actions.filter { if case .shutdown = $0 { true } else { false } }.count
        let statuses = h.sent.compactMap { if case .controlReply(let reply) = $0.0.payload { reply.status } else { nil } }
        return (shutdowns, statuses)
    }

    func testACapturedShutdownReplayedIntoARestartedAgentIsRefused() {
        // issue 14 item 25: a captured shutdown stopped the restarted target again (3 of 3).
        var h = keyed()
        let bytes = capture(h, "shutdown")
        XCTAssertEqual(deliver(&h, bytes).shutdowns, 1, "the original runs")
        // The agent restarts a few seconds later: a new core with the same key and empty windows.
        var restarted = PeerHarness(name: "web-1") { $0.keys = [self.key] }
        restarted.now = h.now + 3_000 * ms
        restarted.start()
        let replay = deliver(&restarted, bytes)
        XCTAssertEqual(replay.shutdowns, 0, "issued before this agent started")
        XCTAssertEqual(replay.statuses, [.refused])
        XCTAssertEqual(restarted.peer.counters.drops["stale_request"], 1)
        // And much later, outside the request window, it is refused as well.
        restarted.advance(120_000 * ms)
        XCTAssertEqual(deliver(&restarted, capture(h, "shutdown", sequence: 2)).statuses, [.refused])
    }

    func testAReplayAfterTheSequenceWindowsAreClearedIsRefused() {
        // issue 14 item 25: after 4,100 authenticated senders cleared the replay table, an old
        // request was accepted again.
        var h = keyed()
        let bytes = capture(h, "shutdown")
        XCTAssertEqual(deliver(&h, bytes).shutdowns, 1)
        func flood(_ h: inout PeerHarness, base: UInt64) {
            for index in 0..<5_000 {
                // Replies to no request: they pass the sequence check and do nothing else.
                let reply = ControlReply(requestID: 1, status: .ok, memberCount: 1, page: 0, pageCount: 1, body: [])
                h.receive(.controlReply(reply), from: NodeID(high: base, low: UInt64(index)), name: "s")
            }
        }
        flood(&h, base: 80)
        // (Should the sequence window of the sender survive the flood, the replay is simply
        // dropped as `replay`: no reply at all.)
        // Within the window: the repeat is answered from the first run's reply, never run again.
        h.advance(20_000 * ms)
        let soon = deliver(&h, bytes)
        XCTAssertEqual(soon.shutdowns, 0)
        XCTAssertTrue(soon.statuses.isEmpty || soon.statuses == [.ok], "the kept reply, got \(soon.statuses)")
        // Outside the window (the run-once entry may be gone by then): refused.
        flood(&h, base: 81)
        h.advance(45_000 * ms)
        let late = deliver(&h, bytes)
        XCTAssertEqual(late.shutdowns, 0)
        XCTAssertTrue(late.statuses.isEmpty || late.statuses == [.refused], "got \(late.statuses)")
    }

    func testARepeatWithinTheWindowIsNotRunAgain() {
        // issue 14 item 25: the run-once table keeps commands with effects for the whole window.
        var h = keyed()
        let request = ControlRequest(requestID: 9, issuedMillis: h.time.wallMillis, command: "revoke", target: "", args: ["task-9"])
        h.receive(.controlRequest(request), from: operatorID, name: "cli", port: 9400)
        for _ in 0..<5 {
            h.advance(5_000 * ms)
            h.receive(.controlRequest(request), from: operatorID, name: "cli", port: 9400)
        }
        XCTAssertEqual(h.events.filter { if case .revoked = $0 { true } else { false } }.count, 1)
        let statuses = h.sent.compactMap { if case .controlReply(let reply) = $0.0.payload { reply.status } else { nil } }
        XCTAssertEqual(statuses, Array(repeating: .ok, count: 6), "every repeat answered from the kept reply")
    }

    func testTheRequestWindowAppliesToCommandsWithEffectsOnlyAndOnlyWithAKey() {
        // issue 14 item 25: a request far from the agent's clock, either way.
        var h = keyed()
        // Well after the start, so that only the window decides.
        h.advance(60_000 * ms)
        let wall = h.time.wallMillis
        var id: UInt32 = 20
        func status(_ h: inout PeerHarness, _ command: String, _ args: [String], issued: UInt64) -> ControlStatus? {
            id += 1
            h.clearSent()
            h.receive(.controlRequest(ControlRequest(requestID: id, issuedMillis: issued, command: command, target: "", args: args)), from: operatorID, name: "cli", port: 9400)
            return h.sent.compactMap { if case .controlReply(let reply) = $0.0.payload { reply.status } else { nil } }.first
        }
        XCTAssertEqual(status(&h, "revoke", ["a"], issued: wall - 31_000), .refused)
        XCTAssertEqual(status(&h, "revoke", ["a"], issued: wall + 31_000), .refused, "from the future")
        XCTAssertEqual(status(&h, "revoke", ["a"], issued: 0), .refused)
        XCTAssertEqual(status(&h, "revoke", ["a"], issued: .max), .refused)
        XCTAssertEqual(status(&h, "watch", [], issued: 0), .refused)
        XCTAssertEqual(status(&h, "elect", ["jobs"], issued: 0), .refused)
        XCTAssertFalse(h.peer.revoked.contains("a"))
        XCTAssertEqual(status(&h, "revoke", ["a"], issued: wall - 29_000), .ok, "within the window")
        XCTAssertEqual(status(&h, "ping", [], issued: 0), .ok, "no effects: no check")
        XCTAssertEqual(status(&h, "revoked", [], issued: 0), .ok)
        // Without a key there is no replay protection: issued_ms is carried but not checked (§7.4).
        var open = PeerHarness()
        open.start()
        XCTAssertEqual(status(&open, "revoke", ["b"], issued: 0), .ok)
    }

    func testRequestsCarryTheRequesterWallClock() {
        // issue 14 item 25: `request(...)` fills issued_ms.
        var h = PeerHarness()
        h.record(h.peer.request("ping", now: h.time).1)
        guard case .controlRequest(let request)? = h.sentPayloads().first else { return XCTFail("no request sent") }
        XCTAssertEqual(request.issuedMillis, h.time.wallMillis)
    }
}
