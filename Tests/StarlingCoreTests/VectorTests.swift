import Foundation
import StarlingCore
import XCTest

/// The machine-readable vectors of Protocol.md §8: every message type decodes to the listed
/// fields and re-encodes to the same bytes; every negative vector yields its named error.
/// `STARLING_WRITE_VECTORS=1 swift test --filter VectorTests` regenerates the file.
final class VectorTests: XCTestCase {
    static let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Vectors/vectors.json").path

    func testVectorsFileMatchesTheCodec() throws {
        let generated = Self.generate()
        if ProcessInfo.processInfo.environment["STARLING_WRITE_VECTORS"] == "1" {
            try generated.serialized(pretty: true).write(toFile: Self.path, atomically: true, encoding: .utf8)
        }
        let text = try String(contentsOfFile: Self.path, encoding: .utf8)
        let stored = try JSON.parse(text)
        XCTAssertEqual(stored, generated, "vectors.json is stale: regenerate with STARLING_WRITE_VECTORS=1 and review the diff")
    }

    func testPositiveVectorsDecodeAndReencode() throws {
        let vectors = try Self.load()["valid"]!.arrayValue!
        var types = Set<String>()
        for vector in vectors {
            let name = vector["name"]!.stringValue!
            let bytes = Hex.decode(vector["hex"]!.stringValue!)!
            let keys = vector["key"].flatMap { $0.stringValue }.flatMap(Hex.decode).map { [AuthKey($0)] } ?? []
            let codec = Codec(keys: keys)
            let message = try codec.decode(bytes)
            XCTAssertEqual(message.fields, vector["fields"], name)
            XCTAssertEqual(try codec.encode(message), bytes, "\(name) does not re-encode to the same bytes")
            types.insert(message.payload.type.name)
        }
        XCTAssertEqual(types, Set(MessageType.allCases.map(\.name)), "every message type needs a vector")
    }

    func testNegativeVectorsFailWithTheirNamedError() throws {
        let vectors = try Self.load()["invalid"]!.arrayValue!
        XCTAssertGreaterThan(vectors.count, 20)
        for vector in vectors {
            let name = vector["name"]!.stringValue!
            let bytes = Hex.decode(vector["hex"]!.stringValue!)!
            let keys = vector["key"].flatMap { $0.stringValue }.flatMap(Hex.decode).map { [AuthKey($0)] } ?? []
            XCTAssertThrowsError(try Codec(keys: keys).decode(bytes), name) { error in
                XCTAssertEqual((error as? WireError)?.reason, vector["error"]?.stringValue, "\(name): \(error)")
            }
        }
    }

    func testEveryPrefixOfEveryVectorIsRejected() throws {
        for vector in try Self.load()["valid"]!.arrayValue! {
            let bytes = Hex.decode(vector["hex"]!.stringValue!)!
            let keys = vector["key"].flatMap { $0.stringValue }.flatMap(Hex.decode).map { [AuthKey($0)] } ?? []
            for length in 0..<bytes.count {
                XCTAssertThrowsError(try Codec(keys: keys).decode(Array(bytes[0..<length])), "\(vector["name"]!.plain) prefix \(length)")
            }
        }
    }

    static func load() throws -> JSON {
        try JSON.parse(String(contentsOfFile: path, encoding: .utf8))
    }

    // MARK: Generation

    static func generate() -> JSON {
        var valid: [JSON] = Samples.payloads.map { name, payload in
            let bytes = Samples.encode(payload)
            return .object([("name", .string(name)), ("hex", .string(Hex.encode(bytes))), ("fields", Samples.message(payload).fields)])
        }
        let signed = Samples.encode(.goodbye, keys: [Samples.key])
        valid.append(.object([("name", .string("goodbye-authenticated")), ("key", .string(Hex.encode(Samples.key.bytes))),
            ("hex", .string(Hex.encode(signed))), ("fields", try! Codec(keys: [Samples.key]).decode(signed).fields)]))
        let extended = Message(header: Samples.header(), payload: .candidacy(Candidacy(term: 4, topic: "scheduler")),
            extensions: [Extension(type: 0x40, value: Array("later".utf8)), Extension(type: 0x90, value: [])])
        let extendedBytes = try! Codec().encode(extended)
        valid.append(.object([("name", .string("candidacy-with-extensions")), ("hex", .string(Hex.encode(extendedBytes))),
            ("fields", try! Codec().decode(extendedBytes).fields)]))
        // Member tags (§3.4.1): a short set in one entry, and 512 bytes cut into three.
        let listed = ListedTags.extensions([ListedTags(index: 0, incarnation: 2, tags: Samples.tags)])
        for (name, payload, extensions) in [("ping-with-tags", Samples.payload("ping"), Samples.tags.extensions),
                                            ("announce-with-512-bytes-of-tags", Samples.payload("announce"), Samples.largestTags.extensions),
                                            ("members-listing-tags", Samples.payload("members"), Samples.tags.extensions + listed),
                                            // §6.3.1: a starting peer's first ANNOUNCE carries its HELLO (request_id 0x0102_0304).
                                            ("announce-carrying-hello", Samples.payload("announce"), [Message.carrying(hello: 0x0102_0304)])] {
            let bytes = try! Codec().encode(Message(header: Samples.header(), payload: payload, extensions: extensions))
            valid.append(.object([("name", .string(name)), ("hex", .string(Hex.encode(bytes))), ("fields", try! Codec().decode(bytes).fields)]))
        }
        return .object([
            ("protocol_version", .int(Limits.version)),
            ("note", .string("Generated from Tests/StarlingCoreTests/Samples.swift; see Protocol.md section 8.")),
            ("valid", .array(valid)),
            ("invalid", .array(negatives())),
        ])
    }

    static func negatives() -> [JSON] {
        var out: [JSON] = []
        func add(_ name: String, _ bytes: [UInt8], _ error: String, key: AuthKey? = nil) {
            var fields: [(String, JSON)] = [("name", .string(name)), ("hex", .string(Hex.encode(bytes))), ("error", .string(error))]
            if let key { fields.append(("key", .string(Hex.encode(key.bytes)))) }
            out.append(.object(fields))
        }
        // A PING with one IPv4 piggyback entry: header 64 bytes (cluster and name 8 each),
        // payload_len at 64, payload from 66: probe_id, target, digest, count, then the entry.
        let ping = Samples.encode(Samples.payload("ping"))
        let headerEnd = Limits.fixedHeader + 8 + 8
        let payloadStart = headerEnd + 2
        let entryStart = payloadStart + 4 + 16 + 12 + 1
        /// The same datagram with its payload cut to `keep` bytes and payload_len saying so:
        /// the payload decoder, not the framing, meets the end.
        func cutPayload(_ bytes: [UInt8], keep: Int) -> [UInt8] {
            Array(bytes[0..<headerEnd]) + [UInt8(keep >> 8), UInt8(keep & 0xFF)] + Array(bytes[payloadStart..<(payloadStart + keep)])
        }
        // Truncated at every field boundary of the header and inside the payload.
        for cut in [0, 3, 4, 5, 6, 8, 16, 24, 40, 44, 46, 47, 48, 56, headerEnd, headerEnd + 1, payloadStart, payloadStart + 4,
            payloadStart + 20, payloadStart + 32, entryStart + 1, ping.count - 1] {
            add("truncated-at-\(cut)", Array(ping[0..<cut]), "truncated")
        }
        // The payload alone cut at each field of PING (and its entry), ANNOUNCE, PING_REQ, an
        // IPv6 entry, with payload_len consistent.
        for keep in [0, 2, 4, 20, 24, 32, 33, 49, 53, 54, 55, 59, 61, 62, 69] {
            add("ping-payload-cut-at-\(keep)", cutPayload(ping, keep: keep), "truncated")
        }
        let announce = Samples.encode(Samples.payload("announce-range"))
        for keep in [0, 1, 2, 4, 8, 15] { add("announce-payload-cut-at-\(keep)", cutPayload(announce, keep: keep), "truncated") }
        let ack = Samples.encode(Samples.payload("ack-piggyback"))
        // The second entry is the IPv6 one: its address starts 33 + 37 + 22 bytes into the payload.
        for keep in [33 + 37 + 22, 33 + 37 + 30, 33 + 37 + 38] { add("ack-ipv6-entry-cut-at-\(keep)", cutPayload(ack, keep: keep), "truncated") }
        let pingRequest = Samples.encode(Samples.payload("ping-request"))
        add("ping-request-cut-at-19", cutPayload(pingRequest, keep: 19), "truncated")
        add("nack-cut-at-4", cutPayload(Samples.encode(Samples.payload("nack")), keep: 4), "truncated")
        var badMagic = ping; badMagic[0] = UInt8(ascii: "X")
        add("bad-magic", badMagic, "bad_magic")
        var version = ping; version[4] = 9
        add("unknown-version", version, "unsupported_version")
        var old = ping; old[4] = 1
        add("version-1", old, "unsupported_version")
        var type = ping; type[5] = 0x7F
        add("unknown-type", type, "unknown_type")
        // Version 1's HEARTBEAT code is unknown in version 2, whatever follows.
        var heartbeat = ping; heartbeat[5] = 0x02
        add("heartbeat-type-is-unknown", heartbeat, "unknown_type")
        // A version-1 PROBE body (probe_id, target) read as a PING lacks the digest.
        add("probe-body-as-ping", cutPayload(ping, keep: 20), "truncated")
        var overrun = ping; overrun[headerEnd] = 0xFF
        add("payload-length-overruns", overrun, "truncated")
        var longName = ping; longName[47] = 65
        add("name-too-long", longName, "bad_length")
        var emptyName = ping; emptyName[47] = 0
        add("name-empty", emptyName, "bad_length")
        var utf8 = ping; utf8[48 + 8] = 0xC3; utf8[48 + 9] = 0x28
        add("name-invalid-utf8", utf8, "invalid_utf8")
        add("trailing-garbage", ping + [0x00], "trailing_bytes")
        var inner = Samples.encode(.goodbye)
        inner[inner.count - 1] = 1
        add("payload-longer-than-fields", inner + [0xAB], "trailing_bytes")
        add("ping-request-longer-than-fields", cutPayload(pingRequest + [0], keep: 21), "trailing_bytes")
        add("oversized", ping + [UInt8](repeating: 0, count: Limits.maxDatagram + 1 - ping.count), "oversized")
        var status = ping; status[entryStart + 16 + 4] = 9
        add("member-status-unknown", status, "invalid_value")
        var family = ping; family[entryStart + 16 + 4 + 1] = 5
        add("member-family-unknown", family, "invalid_value")
        var familyZero = ping; familyZero[entryStart + 16 + 4 + 1] = 0
        add("member-family-zero", familyZero, "invalid_value")
        // Family 6 on an IPv4 entry: the 16 address bytes run past the payload.
        var familySix = ping; familySix[entryStart + 16 + 4 + 1] = 6
        add("member-family-6-with-4-address-bytes", familySix, "truncated")
        var memberName = ping; memberName[entryStart + 16 + 4 + 1 + 1 + 4 + 2] = 0
        add("member-name-empty", memberName, "bad_length")
        var countOverruns = ping; countOverruns[entryStart - 1] = 2
        add("piggyback-count-overruns", countOverruns, "truncated")
        let change = Samples.encode(Samples.payload("change"))
        add("change-payload-empty", cutPayload(change, keep: 0), "truncated")
        var emptyChange = cutPayload(change, keep: 1); emptyChange[payloadStart] = 0
        add("change-count-zero", emptyChange, "invalid_value")
        var inverted = announce; inverted[payloadStart] = 3; inverted[payloadStart + 1] = 2
        add("announce-versions-inverted", inverted, "invalid_value")
        var zeroVersion = announce; zeroVersion[payloadStart] = 0
        add("announce-lowest-version-zero", zeroVersion, "invalid_value")
        // The extension area (§3.4): flag bit 1 set and the area missing, empty,
        // overrun by an entry, or holding a type twice.
        let candidacy = Samples.encode(.candidacy(Candidacy(term: 3, topic: "jobs")))
        var flagged = candidacy; flagged[7] |= 0x02
        add("extension-area-missing", flagged, "truncated")
        add("extension-area-empty", flagged + [0, 0], "invalid_value")
        add("extension-entry-overruns", flagged + [0, 3, 0x01, 4, 0x41], "truncated")
        add("extension-type-twice", flagged + [0, 6, 0x05, 1, 0x41, 0x05, 1, 0x42], "invalid_value")
        add("extension-area-short", flagged + [0, 5, 0x05, 1, 0x41], "truncated")
        // Member tags (§3.4.1): each a whole tags entry of type 0x01 on the same candidacy.
        func tagsArea(_ entries: [[UInt8]], types: [UInt8]? = nil) -> [UInt8] {
            var area: [UInt8] = []
            for (index, value) in entries.enumerated() { area += [types?[index] ?? 0x01, UInt8(value.count)] + value }
            return flagged + [UInt8(area.count >> 8), UInt8(area.count & 0xFF)] + area
        }
        let roleDB: [UInt8] = [4] + Array("role".utf8) + [2] + Array("db".utf8)
        add("tags-pair-cut-short", tagsArea([Array(roleDB.dropLast())]), "truncated")
        add("tags-key-empty", tagsArea([[0, 1, 0x41]]), "bad_length")
        add("tags-key-with-equals", tagsArea([[3] + Array("a=b".utf8) + [0]]), "invalid_value")
        add("tags-value-with-control-byte", tagsArea([[1, 0x61, 1, 0x0A]]), "invalid_value")
        add("tags-keys-out-of-order", tagsArea([[1, 0x62, 0, 1, 0x61, 0]]), "invalid_value")
        add("tags-key-twice", tagsArea([[1, 0x61, 0, 1, 0x61, 0]]), "invalid_value")
        add("tags-entry-empty", tagsArea([roleDB, []]), "invalid_value")
        add("tags-entries-apart", tagsArea([roleDB, [7], [1, 0x7A, 0]], types: [0x01, 0x90, 0x01]), "invalid_value")
        let value255 = [UInt8](repeating: 0x76, count: 255)
        let tooLarge = [1, 0x61, 255] + value255 + [1, 0x62, 255] + value255
        // Tags listed on a MEMBERS page (type 0x02): index u8, incarnation u32, tags_len u16, tag bytes.
        let members = Samples.encode(Samples.payload("members"))
        var membersFlagged = members; membersFlagged[7] |= 0x02
        func listedArea(_ value: [UInt8]) -> [UInt8] { membersFlagged + [0, UInt8(2 + value.count), 0x02, UInt8(value.count)] + value }
        let record: (UInt8, UInt16) -> [UInt8] = { index, length in [index, 0, 0, 0, 2, UInt8(length >> 8), UInt8(length & 0xFF)] }
        add("listed-tags-index-past-the-page", listedArea(record(1, 8) + roleDB), "invalid_value")
        add("listed-tags-indices-not-increasing", listedArea(record(0, 8) + roleDB + record(0, 8) + roleDB), "invalid_value")
        add("listed-tags-length-zero", listedArea(record(0, 0)), "invalid_value")
        add("listed-tags-length-over-512", listedArea(record(0, 513) + roleDB), "bad_length")
        add("listed-tags-cut-short", listedArea(record(0, 9) + roleDB), "truncated")
        add("listed-tags-bad-tags", listedArea(record(0, 6) + [1, 0x62, 0, 1, 0x61, 0]), "invalid_value")
        // The HELLO an ANNOUNCE carries (type 0x03) is a 4-byte request_id.
        var announceFlagged = Samples.encode(Samples.payload("announce")); announceFlagged[7] |= 0x02
        add("hello-request-id-of-3-bytes", announceFlagged + [0, 5, 0x03, 3, 1, 2, 3], "invalid_value")
        // On a PING or ACK they index the piggyback: the sample PING carries one entry.
        var pingFlagged = Samples.encode(Samples.payload("ping")); pingFlagged[7] |= 0x02
        add("listed-tags-index-past-the-piggyback", pingFlagged + [0, UInt8(2 + 15), 0x02, 15] + record(1, 8) + roleDB, "invalid_value")
        add("tags-over-512-bytes", tagsArea([Array(tooLarge[0..<255]), Array(tooLarge[255..<510]), Array(tooLarge[510...])]), "bad_length")
        // USER_EVENT (§3.6, issue 18): request_id u32, sequence u32, stamp u64, name str8, payload u16 + bytes.
        let userEvent = Samples.encode(Samples.payload("user-event"))
        var zeroSequence = userEvent; zeroSequence[payloadStart + 7] = 0
        add("user-event-sequence-zero", zeroSequence, "invalid_value")
        var highStamp = userEvent; highStamp[payloadStart + 8] = 0x80
        add("user-event-stamp-above-ceiling", highStamp, "invalid_value")
        var controlName = userEvent; controlName[payloadStart + 17] = 0x0A
        add("user-event-name-control", controlName, "invalid_value")
        var commaName = userEvent; commaName[payloadStart + 17] = UInt8(ascii: ",")
        add("user-event-name-comma", commaName, "invalid_value")
        let named = Samples.encode(.userEvent(UserEvent(requestID: 82, sequence: 1, stamp: 41, name: "d", payload: "")))
        var emptyEventName = named; emptyEventName[payloadStart + 16] = 0
        add("user-event-name-empty", emptyEventName, "bad_length")
        var longPayload = cutPayload(named, keep: 18)
        longPayload += [0x04, 0x01] + Array(repeating: UInt8(ascii: "x"), count: 1_025)
        longPayload[headerEnd] = UInt8((18 + 2 + 1_025) >> 8); longPayload[headerEnd + 1] = UInt8((18 + 2 + 1_025) & 0xFF)
        add("user-event-payload-too-long", longPayload, "bad_length")
        for keep in [0, 4, 8, 16, 17, 20] { add("user-event-cut-at-\(keep)", cutPayload(userEvent, keep: keep), "truncated") }
        let signed = Samples.encode(.goodbye, keys: [Samples.key])
        add("tag-without-key", signed, "unexpected_tag")
        add("missing-tag", Samples.encode(.goodbye), "missing_tag", key: Samples.key)
        add("truncated-tag", Array(signed.dropLast(5)), "truncated_tag", key: Samples.key)
        var tampered = signed; tampered[20] ^= 0x01
        add("tampered-body", tampered, "bad_tag", key: Samples.key)
        add("wrong-key", signed, "bad_tag", key: AuthKey(Array(repeating: 7, count: 32)))
        return out
    }
}
