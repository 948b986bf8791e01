import StarlingCore
import XCTest

/// What the decomposition of the core promises its users (issue 15).
final class DecompositionTests: XCTestCase {
    let id = NodeID(high: 7, low: 9)

    func message(stamp: UInt64, payload: Payload = .goodbye) -> Message {
        Message(header: Header(sequence: 3, stamp: stamp, sender: id, incarnation: 0, replyPort: 9100, cluster: "starling", name: "n"), payload: payload)
    }

    /// Issue 15: the header layout is read only by the codec (the simulator asks it for stamps).
    func testTheCodecReadsTheStampOfADatagram() throws {
        let bytes = try Codec().encode(message(stamp: 0x0102_0304_0506))
        XCTAssertEqual(Codec.stamp(ofDatagram: bytes), 0x0102_0304_0506)
        XCTAssertNil(Codec.stamp(ofDatagram: Array(bytes.prefix(23))), "too short to hold a stamp")
    }

    /// Issue 15: one rendering of an event; `watch`, the event log and `kind` agree on it.
    func testEventsHaveOneRendering() {
        let events: [PeerEvent] = [
            .joined(name: "a", id: id, endpoint: Endpoint(address: 0x7F00_0001, port: 1)),
            .statusChanged(name: "a", id: id, from: .alive, to: .dead), .searching, .stalled(millis: 3),
            .reaped(name: "a", id: id), .dropped(reason: "x", from: Endpoint(address: 1, port: 1)),
        ]
        for event in events {
            let rendering = event.rendering
            XCTAssertEqual(event.kind, rendering.name)
            guard let fields = rendering.fields else {
                XCTAssertNil(Peer.eventJSON(event, source: "s", wallMillis: 1), "\(event) is not a cluster event")
                continue
            }
            let expected: [(String, JSON)] = [("time_ms", .int(1)), ("source", .string("s")), ("event", .string(rendering.name))] + fields
            XCTAssertEqual(Peer.eventJSON(event, source: "s", wallMillis: 1), .object(expected))
        }
        XCTAssertEqual(PeerEvent.statusChanged(name: "a", id: id, from: .alive, to: .dead).rendering.severity, .warning)
    }

    /// Issue 15: a requester that is not a member (the CLI) needs no Peer; it takes replies only.
    func testControlRequesterTakesRepliesOnly() throws {
        var requester = ControlRequester(config: PeerConfig(name: "cli", id: NodeID(high: 99, low: 1)))
        let now = Now(nanos: 1_000_000_000, wallMillis: 1_800_000_000_000)
        let (requestID, sent) = requester.request("ping", now: now)
        guard case .send(_, .group)? = sent.first else { return XCTFail("a request to everyone goes to the group: \(sent)") }
        let source = Endpoint(address: 0x7F00_0001, port: 9100)
        XCTAssertTrue(requester.onDatagram(try Codec().encode(message(stamp: 5)), from: source, now: now).isEmpty)
        XCTAssertEqual(requester.counters.drops["not_member"], 1)
        let reply = ControlReply(requestID: requestID, status: .ok, memberCount: 1, page: 0, pageCount: 1, body: Array("{}".utf8))
        let actions = requester.onDatagram(try Codec().encode(message(stamp: 6, payload: .controlReply(reply))), from: source, now: now)
        XCTAssertTrue(actions.contains { if case .emit(.reply(requestID, "n", _, .ok, "{}")) = $0 { true } else { false } })
        XCTAssertEqual(requester.clock.value, 7, "the clock moves past every stamp received")
    }
}
