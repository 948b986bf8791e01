import StarlingCore
import XCTest

/// Key rotation while running and the `reload` / `keys` commands (issue 20; Protocol.md §3.5.1,
/// §7.1).
final class ReloadTests: XCTestCase {
    let ms = PeerHarness.ms
    let old = AuthKey(Array(repeating: 9, count: 32))
    let new = AuthKey(Array(repeating: 7, count: 32))
    let operatorID = NodeID(high: 70, low: 1)

    func keyed(_ keys: [AuthKey]) -> PeerHarness {
        var h = PeerHarness(name: "web-1") { $0.keys = keys }
        h.start()
        return h
    }

    /// A request from an operator, tagged with `key`.
    func request(_ h: PeerHarness, _ command: String, target: String = "web-1", key: AuthKey, sequence: UInt64) -> [UInt8] {
        let header = Header(sequence: sequence, stamp: 1, sender: operatorID, incarnation: 0, replyPort: 9400, cluster: "starling", name: "cli")
        let request = ControlRequest(requestID: UInt32(sequence), issuedMillis: h.time.wallMillis, command: command, target: target, args: [])
        return try! Codec(keys: [key]).encode(Message(header: header, payload: .controlRequest(request)))
    }

    func deliver(_ h: inout PeerHarness, _ bytes: [UInt8]) -> (actions: [Action], replies: [ControlReply]) {
        h.clearSent()
        let actions = h.peer.onDatagram(bytes, from: Endpoint(address: 0x7F00_0001, port: 9400), now: h.time)
        h.record(actions)
        return (actions, h.sent.compactMap { if case .controlReply(let reply) = $0.0.payload { reply } else { nil } })
    }

    func testKeysRotateInThreeStepsWithoutARestart() {
        var h = keyed([old])
        XCTAssertEqual(deliver(&h, request(h, "ping", key: new, sequence: 1)).replies.count, 0, "the new key is not known yet")
        XCTAssertEqual(h.peer.counters.drops["bad_tag"], 1)
        XCTAssertTrue(h.peer.rotateKeys([old, new]), "step 1: the new key verifies too")
        h.codec = Codec(keys: [old])  // what the peer sends must still verify with the old key alone
        XCTAssertEqual(deliver(&h, request(h, "ping", key: new, sequence: 2)).replies.count, 1)
        XCTAssertTrue(h.peer.rotateKeys([new, old]), "step 2: the new key signs")
        h.codec = Codec(keys: [new])  // the harness decodes (and so accepts) only what the new key signed
        let signed = deliver(&h, request(h, "ping", key: old, sequence: 3))
        XCTAssertEqual(signed.replies.count, 1, "the old key still verifies; the reply is signed with the new one")
        XCTAssertTrue(h.peer.rotateKeys([new]), "step 3: the old key goes")
        XCTAssertEqual(deliver(&h, request(h, "ping", key: old, sequence: 4)).replies.count, 0)
        XCTAssertEqual(h.peer.counters.drops["bad_tag"], 2)
    }

    func testRotationNeverTurnsAuthenticationOnOrOff() {
        var keyless = PeerHarness(name: "web-1")
        keyless.start()
        XCTAssertFalse(keyless.peer.rotateKeys([new]))
        XCTAssertTrue(keyless.peer.config.keys.isEmpty)
        var h = keyed([old])
        XCTAssertFalse(h.peer.rotateKeys([]))
        XCTAssertEqual(h.peer.config.keys, [old])
    }

    func testReloadRunsOnlyWithAKeyAndForExactlyOneAgent() {
        var h = keyed([old])
        let reload = deliver(&h, request(h, "reload", key: old, sequence: 1))
        XCTAssertEqual(reload.replies.map(\.status), [.ok])
        XCTAssertEqual(reload.actions.filter { if case .reload(let by) = $0 { by == "cli" } else { false } }.count, 1)
        let glob = deliver(&h, request(h, "reload", target: "web-*", key: old, sequence: 2))
        XCTAssertEqual(glob.replies.map(\.status), [.refused])
        XCTAssertFalse(glob.actions.contains { if case .reload = $0 { true } else { false } })

        var keyless = PeerHarness(name: "web-1")
        keyless.start()
        let header = Header(sequence: 1, stamp: 1, sender: operatorID, incarnation: 0, replyPort: 9400, cluster: "starling", name: "cli")
        let open = ControlRequest(requestID: 1, issuedMillis: keyless.time.wallMillis, command: "reload", target: "web-1", args: [])
        let bytes = try! Codec(keys: []).encode(Message(header: header, payload: .controlRequest(open)))
        let refused = deliver(&keyless, bytes)
        XCTAssertEqual(refused.replies.map(\.status), [.refused])
        XCTAssertFalse(refused.actions.contains { if case .reload = $0 { true } else { false } })
    }

    func testKeysListsFingerprintsNeverKeys() throws {
        var h = keyed([new, old])
        let reply = try XCTUnwrap(deliver(&h, request(h, "keys", key: old, sequence: 1)).replies.first)
        let body = String(decoding: reply.body, as: UTF8.self)
        let json = try JSON.parse(body)
        XCTAssertEqual(json["keys"], .array([.string(new.fingerprint), .string(old.fingerprint)]))
        XCTAssertEqual(new.fingerprint, Hex.encode(SHA256.hash(new.bytes).prefix(8)))
        XCTAssertEqual(new.fingerprint.utf8.count, 16)
        XCTAssertFalse(body.contains(Hex.encode(new.bytes)) || body.contains(Hex.encode(old.bytes)), "no key in the reply")
    }
}
