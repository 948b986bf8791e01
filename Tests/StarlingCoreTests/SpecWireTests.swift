import StarlingCore
import XCTest

/// Issue 14, "Spec clarity": the wire rules Protocol.md now states exactly — what "header"
/// counts (§2.2), the order of checks (§5.1) and the reason of every value violation (§5.1.1);
/// issue 16: the same for the payloads of version 2 (§3.1).
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

    /// Why `bytes` is refused, as the error itself (nil when accepted).
    func error(_ bytes: [UInt8]) -> WireError? {
        do {
            _ = try Codec().decode(bytes)
            return nil
        } catch {
            return error
        }
    }

    /// A payload as named fields, so that a test knows which field each byte belongs to.
    typealias Fields = [(field: String, bytes: [UInt8])]

    /// A member entry (§3.1): id, incarnation, status, family, address (4 or 16 bytes), port, name.
    func entryFields(name: String = "worker-2", status: UInt8 = 0, family: UInt8 = 4) -> Fields {
        [("member_id", be(1, 16)), ("member_incarnation", be(0, 4)), ("member_status", [status]), ("member_family", [family]),
         ("member_address", family == 6 ? be(0xFD00, 8) + be(2, 8) : be(0x7F00_0001, 4)), ("member_port", be(9100, 2)),
         ("member_name", [UInt8(name.utf8.count)]), ("member_name", Array(name.utf8))]
    }

    func entry(name: String = "worker-2", status: UInt8 = 0, family: UInt8 = 4) -> [UInt8] {
        entryFields(name: name, status: status, family: family).flatMap(\.bytes)
    }

    let digestFields: Fields = [("digest_count", [0, 0, 0, 2]), ("digest_hash", [0, 0, 0, 0, 0, 0, 0, 5])]

    /// PING and ACK payload (§3.1): probe_id, target, revoked digest, entry_count, entries.
    func pingFields(_ entries: [Fields]) -> Fields {
        [("probe_id", be(9, 4)), ("target", be(1, 16))] + digestFields + [("entry_count", [UInt8(entries.count)])] + entries.flatMap { $0 }
    }

    func ping(_ entries: [[UInt8]]) -> [UInt8] {
        be(9, 4) + be(1, 16) + be(0, 12) + [UInt8(entries.count)] + entries.flatMap { $0 }
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

    /// Issue 16: a member entry is 25 fixed bytes (name length byte included) + the address
    /// (4 or 16) + the name: no interval any more.
    func testMemberEntryTakes25BytesPlusAddressPlusName() throws {
        let header = Header(sequence: 1, stamp: 1, sender: sender, incarnation: 0, replyPort: 1, cluster: "starling", name: "w")
        func size(_ piggyback: [MemberEntry]) throws -> Int {
            try Codec().encode(Message(header: header, payload: .ping(Ping(probeID: 1, target: sender, revoked: .empty, piggyback: piggyback)))).count
        }
        let v4 = MemberEntry(id: sender, incarnation: 1, status: .alive, endpoint: Endpoint(address: 1, port: 2), name: "worker-001")
        let v6 = MemberEntry(id: sender, incarnation: 1, status: .alive, address: .ipv6(high: 1, low: 2), port: 2, name: "worker-001")
        XCTAssertEqual(try size([v4]) - size([]), 25 + 4 + 10)
        XCTAssertEqual(try size([v6]) - size([]), 25 + 16 + 10)
        XCTAssertEqual(try size([]), 48 + 8 + 1 + 2 + 33, "a PING without piggyback: header, payload_len, 33 payload bytes")
        XCTAssertEqual(entry(name: "worker-001").count, 39, "this test's own builder agrees")
        XCTAssertEqual(entry(name: "worker-001", family: 6).count, 51)
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
            ("member status 4", 0x04, ping([entry(status: 4)]), "invalid_value"),
            ("member name empty", 0x04, ping([entry(name: "")]), "bad_length"),
            ("member name 65 bytes", 0x04, ping([entry(name: String(repeating: "n", count: 65))]), "bad_length"),
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
            // Version 2 (issue 16): PING/ACK piggyback, the address family, the version range,
            // CHANGE never empty, HEARTBEAT's code unknown.
            ("PING with 9 piggyback entries", 0x04, ping((0..<9).map { _ in entry() }), "accepted"),
            ("ACK with 9 piggyback entries", 0x05, ping((0..<9).map { _ in entry() }), "accepted"),
            ("PING without piggyback", 0x04, ping([]), "accepted"),
            ("PING entry_count 255, one entry present", 0x04, Array(ping([entry()]).prefix(32)) + [255] + entry(), "truncated"),
            ("member family 5", 0x04, ping([entry(family: 5)]), "invalid_value"),
            ("member family 0", 0x04, ping([entry(family: 0)]), "invalid_value"),
            ("member family 6", 0x04, ping([entry(family: 6)]), "accepted"),
            ("member family 6, all-zero address", 0x09, [1] + be(1, 16) + be(0, 4) + [0, 6] + be(0, 16) + be(9100, 2) + [1, 0x61], "accepted"),
            ("ANNOUNCE versions 3…2", 0x01, [3, 2] + be(1, 2) + be(0, 12), "invalid_value"),
            ("ANNOUNCE versions 0…2", 0x01, [0, 2] + be(1, 2) + be(0, 12), "invalid_value"),
            ("ANNOUNCE versions 2…9", 0x01, [2, 9] + be(1, 2) + be(0, 12), "accepted"),
            ("ANNOUNCE versions 1…1", 0x01, [1, 1] + be(1, 2) + be(0, 12), "accepted"),
            ("ANNOUNCE member_count 0", 0x01, [2, 2] + be(0, 2) + be(0, 12), "accepted"),
            ("HELLO versions 3…2", 0x10, [3, 2] + be(1, 4) + be(0, 12), "invalid_value"),
            ("HELLO versions 0…2", 0x10, [0, 2] + be(1, 4) + be(0, 12), "invalid_value"),
            ("HELLO versions 2…9", 0x10, [2, 9] + be(1, 4) + be(0, 12), "accepted"),
            ("HELLO_REPLY versions 0…0", 0x11, [0, 0] + be(1, 4) + be(1, 2) + be(0, 12) + [0], "invalid_value"),
            ("CHANGE entry_count 0", 0x09, [0], "invalid_value"),
            ("CHANGE one entry", 0x09, [1] + entry(), "accepted"),
            ("PING_REQ", 0x07, be(9, 4) + be(1, 16), "accepted"),
            ("NACK one byte more", 0x08, be(9, 4) + be(1, 16) + [0], "trailing_bytes"),
            ("HEARTBEAT (version 1's 0x02)", 0x02, be(150, 4) + be(1, 2) + be(0, 12) + [0], "unknown_type"),
            ("unassigned 0x0F", 0x0F, [], "unknown_type"),
            ("USER_EVENT empty (issue 18)", 0x0A, [], "truncated"),
            ("reserved for later versions 0x40", 0x40, [], "unknown_type"),
            ("private 0x80", 0x80, [], "unknown_type"),
        ]
        for (label, type, payload, expected) in cases {
            XCTAssertEqual(reason(datagram(type: type, payload: payload)), expected, "issue 14 spec clarity: \(label)")
        }
    }

    /// Issue 16: every truncation point of the version-2 payloads (PING, ACK with an IPv4 and
    /// an IPv6 entry, ANNOUNCE, PING_REQ, NACK, CHANGE) is `truncated`, naming the field that
    /// is cut, with payload_len consistent (so the payload decoder, not the framing, finds it).
    func testEveryTruncationOfAVersion2PayloadNamesTheField() {
        let ping = pingFields([entryFields(), entryFields(family: 6)])
        let announce: Fields = [("lowest_version", [2]), ("highest_version", [2]), ("member_count", be(3, 2))] + digestFields
        let probe: Fields = [("probe_id", be(9, 4)), ("target", be(1, 16))]
        let change: Fields = [("entry_count", [2])] + entryFields(family: 6) + entryFields(status: 2)
        for (type, fields) in [(UInt8(0x04), ping), (0x05, ping), (0x01, announce), (0x07, probe), (0x08, probe), (0x09, change)] {
            let payload = fields.flatMap(\.bytes)
            XCTAssertNil(error(datagram(type: type, payload: payload)), "type \(type) whole")
            var offset = 0
            for (field, bytes) in fields {
                for cut in offset..<(offset + bytes.count) {
                    XCTAssertEqual(error(datagram(type: type, payload: Array(payload[0..<cut]))), .truncated(field: field),
                        "issue 16: type \(type) payload cut at \(cut)")
                }
                offset += bytes.count
            }
        }
    }

    func testEmptyPageIDIsBadLength() throws {
        // Every byte is present: one entry with an empty id and its time.
        let payload = be(1, 4) + [0, 1] + be(1, 2) + [0] + be(5, 8)
        try expect(datagram(type: 0x13, payload: payload), "bad_length", before: "truncated",
            fix: "PayloadCodec's PAGE entry-count pre-check must not decide the reason (issue 14 item 10)")
    }
}
