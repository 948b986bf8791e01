@testable import StarlingCore
import XCTest

/// Issue 18 (member tags, Protocol.md §3.4.1), seeded property tests: any valid set of tags, and
/// any listing of them on a MEMBERS page, survives encoding and decoding byte for byte, takes the
/// room its sizing says, and a change of any single byte of the tag bytes is never trapped on.
final class TagsPropertyTests: XCTestCase {
    var rng = SplitMix64(seed: 0x7A65)

    func random(_ bound: Int) -> Int { Int(rng.next() % UInt64(max(bound, 1))) }

    /// Text from an alphabet with multi-byte characters and the bytes keys may not hold in values.
    func text(_ maxBytes: Int, key: Bool) -> String {
        let alphabet: [String] = key ? ["a", "Z", "0", "-", "é", "e\u{301}", "ß", "☃", ".", " "] : ["a", "=", ",", "+", "*", "?", "é", "☃", " ", ""]
        var out = ""
        for _ in 0..<random(maxBytes + 1) {
            let next = alphabet[random(alphabet.count)]
            if out.utf8.count + next.utf8.count > maxBytes { break }
            out += next
        }
        return out
    }

    func randomTags() -> MemberTags {
        var pairs: [(String, String)] = []
        var size = 0
        for _ in 0..<random(12) {
            var key = text(20, key: true)
            if key.isEmpty { key = "k\(random(1000))" }
            let value = text(random(4) == 0 ? 255 : 30, key: false)
            guard !pairs.contains(where: { bytesEqual($0.0, key) }), size + 2 + key.utf8.count + value.utf8.count <= Limits.tagsBytes else { continue }
            size += 2 + key.utf8.count + value.utf8.count
            pairs.append((key, value))
        }
        return try! MemberTags(pairs: pairs)
    }

    func testTagsRoundTripAndTakeTheRoomTheirSizingSays() throws {
        let codec = Codec()
        for round in 0..<400 {
            let tags = randomTags()
            let plain = Message(header: Samples.header(), payload: Samples.payload("ping-empty"))
            let tagged = Message(header: Samples.header(), payload: Samples.payload("ping-empty"), extensions: tags.extensions)
            let bytes = try codec.encode(tagged)
            XCTAssertEqual(bytes.count - (try codec.encode(plain)).count, tags.extensionBytes, "round \(round)")
            let decoded = try codec.decode(bytes)
            XCTAssertEqual(decoded.senderTags, tags, "round \(round)")
            XCTAssertEqual(decoded.senderTags?.pairs.map { Array($0.key.utf8) }, tags.pairs.map { Array($0.key.utf8) }, "bytes kept")
            // Any one byte of the area changed: refused by name or accepted as other valid tags.
            if !tags.isEmpty {
                var mutated = bytes
                let at = bytes.count - 1 - random(tags.extensionBytes - 2)
                mutated[at] ^= UInt8(1 + random(255))
                if let message = try? codec.decode(mutated) { XCTAssertNotNil(message.senderTags) }
            }
        }
    }

    func testListedTagsRoundTripOnMembersPages() throws {
        let codec = Codec()
        var encoded = 0
        for round in 0..<200 {
            let count = 1 + random(6)
            let entries = (0..<count).map { index in
                MemberEntry(id: NodeID(high: 0x99, low: UInt64(index)), incarnation: UInt32(random(9)), status: .alive,
                    endpoint: Endpoint(address: 0x7F00_0001, port: UInt16(9000 + index)), name: "m\(index)")
            }
            var records: [ListedTags] = []
            for index in 0..<count where random(2) == 0 {
                var tags = randomTags()
                if tags.isEmpty { tags = try MemberTags(["k": "v"]) }
                records.append(ListedTags(index: UInt8(index), incarnation: entries[index].incarnation, tags: tags))
            }
            let message = Message(header: Samples.header(), payload: .members(MembersPage(replyWanted: false, page: 0, pageCount: 1, entries: entries)),
                extensions: ListedTags.extensions(records))
            // Six members with up to 512 bytes each need not fit one datagram (pages are sized).
            do {
                let bytes = try codec.encode(message)
                encoded += 1
                XCTAssertEqual(try codec.decode(bytes).listedTags, records, "round \(round)")
            } catch {
                XCTAssertEqual((error as? WireError)?.reason, "oversized", "round \(round): \(error)")
            }
        }
        XCTAssertGreaterThan(encoded, 100, "most pages fit")
    }
}
