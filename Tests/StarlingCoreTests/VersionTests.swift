import StarlingCore
import XCTest

/// Versions (Protocol.md §2.2, §3.1, §5; issue 16): a version-1 datagram is dropped and
/// counted, and its sender named once in the log.
final class VersionTests: XCTestCase {
    func versionOne(name: String) throws -> [UInt8] {
        var header = Samples.header()
        header.name = name
        var bytes = try Codec().encode(Message(header: header, payload: .goodbye))
        bytes[4] = 1
        return bytes
    }

    func otherVersionEvents(_ h: PeerHarness) -> [PeerEvent] {
        h.events.filter { if case .otherVersion = $0 { true } else { false } }
    }

    func testAVersionOnePeerIsDroppedCountedAndNamedOnce() throws {
        var h = PeerHarness()
        h.start()
        let source = Endpoint(address: 0x7F00_0001, port: 9300)
        for _ in 0..<3 { h.record(h.peer.onDatagram(try versionOne(name: "old-worker"), from: source, now: h.time)) }
        XCTAssertEqual(h.peer.counters.drops["unsupported_version"], 3)
        XCTAssertEqual(otherVersionEvents(h), [.otherVersion(version: 1, name: "old-worker", from: source)])
        XCTAssertTrue(h.peer.members.isEmpty, "nothing else happened")
        XCTAssertEqual(otherVersionEvents(h).first?.rendering.severity, .warning)
    }

    func testNamingIsBoundedAndSurvivesGarbage() throws {
        var h = PeerHarness()
        h.start()
        for port in 0..<100 {
            h.record(h.peer.onDatagram(try versionOne(name: "w\(port)"), from: Endpoint(address: 0x7F00_0001, port: UInt16(10_000 + port)), now: h.time))
        }
        XCTAssertEqual(otherVersionEvents(h).count, 64)
        XCTAssertEqual(h.peer.counters.drops["unsupported_version"], 100)
        // Another version whose header is cut short, or whose name is not UTF-8: still counted, named without a name.
        let short = Array("STRL".utf8) + [7, 3, 0, 0]
        var h2 = PeerHarness()
        h2.start()
        h2.record(h2.peer.onDatagram(short, from: Endpoint(address: 1, port: 1), now: h2.time))
        var bad = try versionOne(name: "xx")
        bad[bad.count - 4] = 0xFF
        h2.record(h2.peer.onDatagram(bad, from: Endpoint(address: 1, port: 2), now: h2.time))
        XCTAssertEqual(otherVersionEvents(h2), [
            .otherVersion(version: 7, name: nil, from: Endpoint(address: 1, port: 1)),
            .otherVersion(version: 1, name: nil, from: Endpoint(address: 1, port: 2)),
        ])
    }

    /// Issue 16: version 1's HEARTBEAT code (0x02) in a version-2 datagram is an unknown type:
    /// dropped and counted like any other, whatever its payload, and nobody becomes a member.
    /// Version 1's PROBE body under PING's code (0x04) lacks the digest: `truncated`.
    func testHeartbeatCodeIsAnUnknownTypeAndOldProbeBodiesAreTruncated() throws {
        var h = PeerHarness()
        h.start()
        let source = Endpoint(address: 0x7F00_0001, port: 9301)
        let ping = try Codec().encode(Message(header: Samples.header(), payload: .ping(Ping(probeID: 1, target: h.peer.config.id, revoked: .empty))))
        var heartbeat = ping
        heartbeat[5] = 0x02
        h.record(h.peer.onDatagram(heartbeat, from: source, now: h.time))
        XCTAssertEqual(h.peer.counters.drops["unknown_type"], 1)
        // payload_len 20: probe_id and target only, as version 1's PROBE.
        let headerEnd = Limits.fixedHeader + 8 + 8
        var probe = Array(ping[0..<(headerEnd + 2 + 20)])
        probe[headerEnd] = 0
        probe[headerEnd + 1] = 20
        h.record(h.peer.onDatagram(probe, from: source, now: h.time))
        XCTAssertEqual(h.peer.counters.drops["truncated"], 1)
        XCTAssertTrue(h.peer.members.isEmpty, "neither datagram had any effect")
        // The same PING whole is accepted: the sender becomes a member.
        h.record(h.peer.onDatagram(ping, from: source, now: h.time))
        XCTAssertEqual(h.peer.members.count, 1)
    }
}
