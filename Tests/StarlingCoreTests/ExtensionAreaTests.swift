import StarlingCore
import XCTest

/// The extension area of protocol version 2 (Protocol.md §3.4, issue 16): optional
/// type-length-value entries after the payload that an older peer skips, covered by the tag.
final class ExtensionAreaTests: XCTestCase {
    let tags = Extension(type: 0x01, value: [4] + Array("role".utf8) + [2] + Array("db".utf8))
    let unknown = Extension(type: 0x7E, value: [1, 2, 3])
    let empty = Extension(type: 0x90, value: [])

    func message(_ extensions: [Extension]) -> Message {
        Message(header: Samples.header(), payload: .candidacy(Candidacy(term: 3, topic: "jobs")), extensions: extensions)
    }

    func testExtensionsRoundTripWithAndWithoutAKey() throws {
        for keys in [[], [Samples.key]] {
            let codec = Codec(keys: keys)
            let sent = message([tags, unknown, empty])
            let bytes = try codec.encode(sent)
            let received = try codec.decode(bytes)
            XCTAssertEqual(received.payload, sent.payload)
            XCTAssertEqual(received.extensions, sent.extensions, "unknown types are kept for the layers above to ignore")
            XCTAssertNotEqual(received.header.flags & Limits.flagExtensions, 0)
        }
        let plain = try Codec().encode(message([]))
        XCTAssertEqual(try Codec().decode(plain).extensions, [])
        XCTAssertEqual(plain.count + 2 + 10 + 5 + 2, try Codec().encode(message([tags, unknown, empty])).count)
    }

    func testTheTagCoversTheExtensionArea() throws {
        let codec = Codec(keys: [Samples.key])
        var bytes = try codec.encode(message([tags]))
        bytes[bytes.count - 32 - 1] ^= 0x20
        XCTAssertThrowsError(try codec.decode(bytes)) { XCTAssertEqual(($0 as? WireError)?.reason, "bad_tag") }
    }

    /// Every way to get the area wrong, by its named error.
    func testMalformedAreasAreRefusedByName() throws {
        let codec = Codec()
        let good = try codec.encode(message([tags]))
        let areaStart = good.count - (2 + 2 + tags.value.count)
        func reason(_ bytes: [UInt8]) -> String? {
            do { _ = try codec.decode(bytes); return nil } catch { return error.reason }
        }
        // Flag set, area missing entirely, or half a length.
        let noArea = Array(good[..<areaStart])
        XCTAssertEqual(reason(noArea), "truncated")
        XCTAssertEqual(reason(noArea + [0]), "truncated")
        // ext_len 0.
        XCTAssertEqual(reason(noArea + [0, 0]), "invalid_value")
        // ext_len longer than what follows, and shorter (bytes left over).
        XCTAssertEqual(reason(noArea + [0, 12] + Array(good[(areaStart + 2)...])), "truncated")
        XCTAssertEqual(reason(good + [0]), "trailing_bytes")
        // An entry whose length runs past ext_len.
        XCTAssertEqual(reason(noArea + [0, 4, 0x01, 9, 0x41, 0x42]), "truncated")
        // A type twice.
        XCTAssertEqual(reason(noArea + [0, 6, 0x05, 1, 0x41, 0x05, 1, 0x42]), "invalid_value")
        // Every prefix of a good datagram is refused, never a trap.
        for end in 0..<good.count { XCTAssertNotNil(reason(Array(good[..<end])), "prefix of \(end) bytes") }
    }

    func testEncodingRefusesWhatCouldNotBeDecoded() {
        XCTAssertThrowsError(try Codec().encode(message([tags, tags])))
        XCTAssertThrowsError(try Codec().encode(message([Extension(type: 1, value: Array(repeating: 0, count: 256))])))
        XCTAssertThrowsError(try Codec().encode(message((0..<6).map { Extension(type: UInt8($0), value: Array(repeating: 0, count: 255)) })),
            "larger than a datagram")
    }

    /// Issue 16: the area follows any payload, a PING with piggybacked entries (IPv4 and IPv6)
    /// included, and payload_len still ends the payload exactly.
    func testAreaAfterAPingWithPiggyback() throws {
        for keys in [[], [Samples.key]] {
            let codec = Codec(keys: keys)
            let sent = Message(header: Samples.header(), payload: Samples.payload("ack-piggyback"), extensions: [tags, empty])
            let received = try codec.decode(try codec.encode(sent))
            XCTAssertEqual(received.payload, sent.payload)
            XCTAssertEqual(received.extensions, sent.extensions)
        }
    }
}
