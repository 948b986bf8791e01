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
            extensions: [Extension(type: 0x01, value: Array("role=db".utf8)), Extension(type: 0x90, value: [])])
        let extendedBytes = try! Codec().encode(extended)
        valid.append(.object([("name", .string("candidacy-with-extensions")), ("hex", .string(Hex.encode(extendedBytes))),
            ("fields", try! Codec().decode(extendedBytes).fields)]))
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
        let beat = Samples.encode(Samples.payloads[1].1)
        // Truncated at every field boundary of the header and inside the payload.
        let headerEnd = Limits.fixedHeader + 8 + 8
        for cut in [0, 3, 4, 5, 6, 8, 16, 24, 40, 44, 46, 47, 48, 56, headerEnd, headerEnd + 2, headerEnd + 6, headerEnd + 20, beat.count - 1] {
            add("truncated-at-\(cut)", Array(beat[0..<cut]), cut < 4 ? "truncated" : "truncated")
        }
        var badMagic = beat; badMagic[0] = UInt8(ascii: "X")
        add("bad-magic", badMagic, "bad_magic")
        var version = beat; version[4] = 9
        add("unknown-version", version, "unsupported_version")
        var old = beat; old[4] = 1
        add("version-1", old, "unsupported_version")
        var type = beat; type[5] = 0x7F
        add("unknown-type", type, "unknown_type")
        var overrun = beat; overrun[headerEnd] = 0xFF
        add("payload-length-overruns", overrun, "truncated")
        var longName = beat; longName[47] = 65
        add("name-too-long", longName, "bad_length")
        var emptyName = beat; emptyName[47] = 0
        add("name-empty", emptyName, "bad_length")
        var utf8 = beat; utf8[48 + 8] = 0xC3; utf8[48 + 9] = 0x28
        add("name-invalid-utf8", utf8, "invalid_utf8")
        add("trailing-garbage", beat + [0x00], "trailing_bytes")
        var inner = Samples.encode(.goodbye)
        inner[inner.count - 1] = 1
        add("payload-longer-than-fields", inner + [0xAB], "trailing_bytes")
        add("oversized", beat + [UInt8](repeating: 0, count: Limits.maxDatagram + 1 - beat.count), "oversized")
        let entryStart = headerEnd + 2 + 4 + 2 + 12 + 1
        var status = beat; status[entryStart + 16 + 4] = 9
        add("member-status-unknown", status, "invalid_value")
        var family = beat; family[entryStart + 16 + 4 + 1] = 5
        add("member-family-unknown", family, "invalid_value")
        // The extension area (appendix A.2): flag bit 1 set and the area missing, empty,
        // overrun by an entry, or holding a type twice.
        let candidacy = Samples.encode(.candidacy(Candidacy(term: 3, topic: "jobs")))
        var flagged = candidacy; flagged[7] |= 0x02
        add("extension-area-missing", flagged, "truncated")
        add("extension-area-empty", flagged + [0, 0], "invalid_value")
        add("extension-entry-overruns", flagged + [0, 3, 0x01, 4, 0x41], "truncated")
        add("extension-type-twice", flagged + [0, 6, 0x05, 1, 0x41, 0x05, 1, 0x42], "invalid_value")
        add("extension-area-short", flagged + [0, 5, 0x05, 1, 0x41], "truncated")
        var zeroInterval = beat; zeroInterval[headerEnd + 5] = 0; zeroInterval[headerEnd + 4] = 0
        add("heartbeat-interval-zero", zeroInterval, "invalid_value")
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
