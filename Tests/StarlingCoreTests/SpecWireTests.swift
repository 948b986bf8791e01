import StarlingCore
import XCTest

/// Issue 14, "Spec clarity": the wire rules Protocol.md now states exactly — what "header"
/// counts (§2.2), the order of checks (§5.1) and the reason of every value violation (§5.1.1).
///
/// A few cases state behaviour the code does not have yet; each skips while the code still gives
/// the old answer, saying so, and turns into a plain assertion once the code is fixed.
final class SpecWireTests: XCTestCase {
    let sender = NodeID(high: 0x0123_4567_89ab_cdef, low: 0xfedc_ba98_7654_3210)

    /// A whole datagram, built byte by byte so that any field can hold any value.
    func datagram(type: UInt8, payload: [UInt8], cluster: [UInt8] = Array("starling".utf8),
        name: [UInt8] = Array("worker-1".utf8), clusterLength: UInt8? = nil, nameLength: UInt8? = nil) -> [UInt8] {
        var bytes: [UInt8] = Array("STRL".utf8) + [Limits.version, type, 0, 0]
        bytes += be(UInt64(7), 8) + be(UInt64(42), 8)
        bytes += be(sender.high, 8) + be(sender.low, 8)
        bytes += be(UInt64(3), 4) + be(UInt64(40123), 2)
        bytes += [clusterLength ?? UInt8(cluster.count), nameLength ?? UInt8(name.count)]
        bytes += cluster + name
        bytes += be(UInt64(payload.count), 2) + payload
        return bytes
    }

    func be(_ value: UInt64, _ count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: value >> UInt64(8 * (count - 1 - $0))) }
    }

    func reason(_ bytes: [UInt8]) -> String {
        do {
            _ = try Codec().decode(bytes)
            return "accepted"
        } catch {
            return error.reason
        }
    }

    /// Asserts the spec's reason; `old` is what the code said before issue 14, `fix` what changed.
    func expect(_ bytes: [UInt8], _ spec: String, before old: String, fix: String, line: UInt = #line) throws {
        XCTAssertEqual(reason(bytes), spec, "was \(old) before: \(fix)", line: line)
    }

    func entry(name: String = "worker-2", status: UInt8 = 0, interval: UInt32 = 150) -> [UInt8] {
        be(1, 16) + be(0, 4) + [status] + [4] + be(0x7F00_0001, 4) + be(9100, 2) + be(UInt64(interval), 4)
            + [UInt8(name.utf8.count)] + Array(name.utf8)
    }

    func beat(_ entries: [[UInt8]], interval: UInt32 = 150) -> [UInt8] {
        be(UInt64(interval), 4) + be(1, 2) + be(0, 12) + [UInt8(entries.count)] + entries.flatMap { $0 }
    }

    // MARK: §2.2 header, §3.1 member entry

    func testHeaderEndsBeforePayloadLength() throws {
        let header = Header(sequence: 1, stamp: 1, sender: sender, incarnation: 0, replyPort: 1, cluster: "starling", name: "worker-001")
        let bytes = try Codec().encode(Message(header: header, payload: .goodbye))
        // Header 48 + 8 + 10 = 66 bytes, payload_len at 66–67, payload (empty) from 68.
        XCTAssertEqual(bytes.count, 68)
        XCTAssertEqual(Array(bytes[48..<56]), Array("starling".utf8))
        XCTAssertEqual(Array(bytes[56..<66]), Array("worker-001".utf8))
        XCTAssertEqual(Array(bytes[66..<68]), [0, 0])
    }

    func testMemberEntryTakes33BytesPlusNameForIPv4() throws {
        let header = Header(sequence: 1, stamp: 1, sender: sender, incarnation: 0, replyPort: 1, cluster: "starling", name: "w")
        let member = MemberEntry(id: sender, incarnation: 1, status: .alive, endpoint: Endpoint(address: 1, port: 2), intervalMillis: 150, name: "worker-001")
        let empty = try Codec().encode(Message(header: header, payload: .heartbeat(Beat(intervalMillis: 150, memberCount: 1, revoked: .empty, gossip: []))))
        let one = try Codec().encode(Message(header: header, payload: .heartbeat(Beat(intervalMillis: 150, memberCount: 1, revoked: .empty, gossip: [member]))))
        XCTAssertEqual(one.count - empty.count, 33 + 10, "32 fixed bytes with an IPv4 address, the name's length byte, the name")
        XCTAssertEqual(entry(name: "worker-001").count, 43, "this test's own builder agrees")
    }

    // MARK: §5.1 order of checks

    func testShortDatagramsAreTruncated() throws {
        XCTAssertEqual(reason([]), "truncated")
        XCTAssertEqual(reason(Array("STR".utf8)), "truncated")
        XCTAssertEqual(reason(Array("STRL".utf8)), "truncated", "version byte missing")
        XCTAssertEqual(reason(Array("STRL".utf8) + [1]), "unsupported_version")
        XCTAssertEqual(reason(Array("XTRL".utf8) + [1]), "bad_magic")
    }

    func testUnderFourBytesIsTruncatedWhateverItsBytes() throws {
        try expect(Array("X".utf8), "truncated", before: "bad_magic",
            fix: "Codec.frame must check for 4 bytes before comparing the magic")
    }

    func testHeaderLengthsAreCheckedBeforeUTF8() throws {
        let bad = datagram(type: 0x03, payload: [], cluster: [0xC3, 0x28], name: [], nameLength: 0)
        try expect(bad, "bad_length", before: "invalid_utf8",
            fix: "Codec.frame must check cluster_len and name_len before validating the cluster (issue 14 item 10)")
    }

    func testHeaderBytesAreLookedForBeforeUTF8() throws {
        let whole = datagram(type: 0x03, payload: [], cluster: [0xC3, 0x28])
        let cut = Array(whole.prefix(48 + 2 + 3))  // ends inside the name
        try expect(cut, "truncated", before: "invalid_utf8",
            fix: "Codec.frame must find cluster, name and payload_len before validating UTF-8")
    }

    func testLengthOutOfBoundsIsBadLengthEvenWhenBytesAreMissing() {
        let whole = datagram(type: 0x03, payload: [], clusterLength: 40)
        XCTAssertEqual(reason(whole), "bad_length")
        XCTAssertEqual(reason(Array(whole.prefix(50))), "bad_length")
    }

    // MARK: §5.1.1 value rules

    func testValueViolationReasons() {
        let cases: [(String, UInt8, [UInt8], String)] = [
            ("beat interval 0", 0x02, beat([], interval: 0), "invalid_value"),
            ("member status 4", 0x02, beat([entry(status: 4)]), "invalid_value"),
            ("member name empty", 0x02, beat([entry(name: "")]), "bad_length"),
            ("MEMBERS reply_wanted 2", 0x06, [2, 0, 1, 0], "invalid_value"),
            ("MEMBERS page = page_count", 0x06, [0, 1, 1, 0], "invalid_value"),
            ("MEMBERS page_count 0", 0x06, [0, 0, 0, 0], "invalid_value"),
            ("PAGE_REQUEST max_pages 0", 0x12, be(1, 4) + be(0, 8) + [0, 0, 0], "invalid_value"),
            ("PAGE_REQUEST cursor 129", 0x12, be(1, 4) + be(0, 8) + [1, 129] + [UInt8](repeating: 0x61, count: 129) + [0], "bad_length"),
            ("PAGE last 2", 0x13, be(1, 4) + [0, 2] + be(0, 2), "invalid_value"),
            ("PAGE id 129", 0x13, be(1, 4) + [0, 1] + be(1, 2) + [129] + [UInt8](repeating: 0x61, count: 129) + be(0, 8), "bad_length"),
            ("CANDIDACY topic empty", 0x20, be(1, 8) + [0], "bad_length"),
            ("CANDIDACY term 2^63", 0x20, be(1 << 63, 8) + [1, 0x74], "invalid_value"),
            ("VOTE candidate_stamp 2^63", 0x22, be(1, 8) + be(0, 16) + be(1 << 63, 8) + [1, 0x74], "invalid_value"),
            ("CONTROL_REQUEST arg_count 65", 0x30, be(1, 4) + be(0, 8) + [4] + Array("ping".utf8) + [0, 65], "bad_length"),
            ("CONTROL_REQUEST command empty", 0x30, be(1, 4) + be(0, 8) + [0, 0, 0], "bad_length"),
            ("CONTROL_REPLY status 4", 0x31, be(1, 4) + [4] + be(1, 2) + be(0, 2) + be(1, 2) + be(0, 2), "invalid_value"),
            ("CONTROL_REPLY page = page_count", 0x31, be(1, 4) + [0] + be(1, 2) + be(1, 2) + be(1, 2) + be(0, 2), "invalid_value"),
            ("CONTROL_REPLY page_count 0", 0x31, be(1, 4) + [0] + be(1, 2) + be(0, 2) + be(0, 2) + be(0, 2), "invalid_value"),
            ("CONTROL_REPLY body cut inside UTF-8", 0x31, be(1, 4) + [0] + be(1, 2) + be(0, 2) + be(2, 2) + be(1, 2) + [0xC3], "accepted"),
            ("HELLO_REPLY with 9 entries", 0x11, [2, 2] + be(1, 4) + be(1, 2) + be(0, 12) + [9] + (0..<9).flatMap { _ in entry() }, "accepted"),
            ("HEARTBEAT with 9 gossip entries", 0x02, beat((0..<9).map { _ in entry() }), "accepted"),
            // Version 2 (Protocol.md appendix A.2): the address family and the version range.
            ("member family 5", 0x02, beat([Array(entry()[0..<21]) + [5] + Array(entry()[22...])]), "invalid_value"),
            ("member family 6", 0x02, beat([Array(entry()[0..<21]) + [6] + be(0, 12) + Array(entry()[22...])]), "accepted"),
            ("HELLO versions 3…2", 0x10, [3, 2] + be(1, 4) + be(0, 12), "invalid_value"),
            ("HELLO versions 0…2", 0x10, [0, 2] + be(1, 4) + be(0, 12), "invalid_value"),
            ("HELLO versions 2…9", 0x10, [2, 9] + be(1, 4) + be(0, 12), "accepted"),
        ]
        for (label, type, payload, expected) in cases {
            XCTAssertEqual(reason(datagram(type: type, payload: payload)), expected, "issue 14 spec clarity: \(label)")
        }
    }

    func testMemberEntryIntervalZeroIsInvalidValue() throws {
        try expect(datagram(type: 0x02, payload: beat([entry(interval: 0)])), "invalid_value", before: "accepted",
            fix: "PayloadCodec.entries must refuse member_interval 0 as the beat's interval is refused")
    }

    func testEmptyPageIDIsBadLength() throws {
        // Every byte is present: one entry with an empty id and its time.
        let payload = be(1, 4) + [0, 1] + be(1, 2) + [0] + be(5, 8)
        try expect(datagram(type: 0x13, payload: payload), "bad_length", before: "truncated",
            fix: "PayloadCodec's PAGE entry-count pre-check must not decide the reason (issue 14 item 10)")
    }
}
