@testable import StarlingCore
import XCTest

/// Custom commands in the core (issue 18, Protocol.md §3.5.3): registered names, the request
/// handed to the shell once, the answer kept for repeats, the bounds.
final class CustomCommandTests: XCTestCase {
    let ms = PeerHarness.ms
    let cli = NodeID(high: 0xC11, low: 7)

    func testRegistrationRefusesBuiltInsAndBadNames() {
        var h = PeerHarness()
        let refused = h.peer.register(commands: ["queue-depth", "ping", "", String(repeating: "x", count: 33), "flush"])
        XCTAssertEqual(refused.map(\.command), ["ping", "", String(repeating: "x", count: 33)])
        XCTAssertEqual(h.peer.registeredCommands, ["flush", "queue-depth"])
        h.peer.unregister(command: "flush")
        XCTAssertEqual(h.peer.registeredCommands, ["queue-depth"])
        let many = h.peer.register(commands: (0..<300).map { "c\($0)" })
        XCTAssertEqual(h.peer.registeredCommands.count, CustomCommands.registeredLimit)
        XCTAssertEqual(many.count, 300 - (CustomCommands.registeredLimit - 1))
    }

    func testARequestIsHandedOverOnceAndItsAnswerKeptForRepeats() throws {
        var h = PeerHarness()
        h.start()
        _ = h.peer.register(commands: ["queue-depth"])
        h.clearSent()
        let request = ControlRequest(requestID: 21, command: "queue-depth", target: "", args: ["high"])
        var handed: [CommandRequest] = []
        let actions = deliver(&h, request)
        for case .command(let command) in actions { handed.append(command) }
        XCTAssertEqual(handed.map(\.args), [["high"]])
        XCTAssertEqual(handed.first?.requesterName, "cli")
        XCTAssertTrue(replies(h).isEmpty, "no reply before the handler answers")
        let whileRunning = deliver(&h, request)
        XCTAssertFalse(whileRunning.contains { if case .command = $0 { true } else { false } }, "a repeat while it runs is not run")
        XCTAssertTrue(replies(h).isEmpty, "nor answered")
        let command = try XCTUnwrap(handed.first)
        h.record(h.peer.answer(command, status: .ok, body: "{\"name\":\"me\",\"result\":3}", now: h.time))
        XCTAssertEqual(replies(h).map(\.status), [.ok])
        XCTAssertTrue(h.peer.answer(command, status: .ok, body: "{}", now: h.time).isEmpty, "answered once")
        let again = deliver(&h, request)
        XCTAssertFalse(again.contains { if case .command = $0 { true } else { false } }, "a repeat does not run it again")
        XCTAssertEqual(replies(h).count, 2, "a repeat is answered from the kept reply")
        XCTAssertEqual(replies(h)[0], replies(h)[1])
    }

    func testUnregisteredCommandsAreUnknownAndOversizedAnswersAreErrors() throws {
        var h = PeerHarness()
        h.start()
        h.clearSent()
        _ = deliver(&h, ControlRequest(requestID: 1, command: "queue-depth", target: "", args: []))
        XCTAssertEqual(replies(h).map(\.status), [.unknownCommand])
        _ = h.peer.register(commands: ["dump"])
        let actions = deliver(&h, ControlRequest(requestID: 2, command: "dump", target: "", args: []))
        let command = try XCTUnwrap(actions.compactMap { if case .command(let c) = $0 { c } else { nil } }.first)
        h.record(h.peer.answer(command, status: .ok, body: String(repeating: "x", count: 70_000), now: h.time))
        XCTAssertEqual(replies(h).last?.status, .error, "more than a kept reply may hold")
    }

    /// At most 256 handlers run at once; a handler that never answers is forgotten after a minute.
    func testRunningHandlersAreBounded() {
        var h = PeerHarness()
        h.start()
        _ = h.peer.register(commands: ["work"])
        h.clearSent()
        var handed = 0
        for id in 1...300 as ClosedRange<UInt32> {
            handed += deliver(&h, ControlRequest(requestID: id, command: "work", target: "", args: [])).filter { if case .command = $0 { true } else { false } }.count
        }
        XCTAssertEqual(handed, CustomCommands.runningLimit)
        XCTAssertEqual(h.peer.counters.drops["commands_full"], 300 - UInt64(CustomCommands.runningLimit))
        XCTAssertEqual(replies(h).filter { $0.status == .refused }.count, 300 - CustomCommands.runningLimit)
        h.advance(61_000 * ms)
        XCTAssertTrue(h.peer.responder.custom.running.isEmpty)
    }

    private func deliver(_ h: inout PeerHarness, _ request: ControlRequest) -> [Action] {
        let header = Header(sequence: (h.sequences[cli] ?? 0) + 1, stamp: 1, sender: cli, incarnation: 0, replyPort: 20_000,
            cluster: h.peer.config.cluster, name: "cli")
        h.sequences[cli] = header.sequence
        let bytes = try! h.codec.encode(Message(header: header, payload: .controlRequest(request)))
        let actions = h.peer.onDatagram(bytes, from: Endpoint(address: PeerHarness.loopback, port: 20_000), now: h.time)
        h.record(actions)
        return actions
    }

    private func replies(_ h: PeerHarness) -> [ControlReply] {
        h.sent.compactMap { if case .controlReply(let reply) = $0.0.payload { reply } else { nil } }
    }
}
