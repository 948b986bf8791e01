import StarlingCore
import XCTest

/// SHA-256 against FIPS 180-4 examples and HMAC-SHA256 against RFC 4231.
final class CryptoTests: XCTestCase {
    func hex(_ bytes: [UInt8]) -> String { Hex.encode(bytes) }

    func testSHA256FIPSExamples() {
        XCTAssertEqual(hex(SHA256.hash(Array("abc".utf8))), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(hex(SHA256.hash([])), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(hex(SHA256.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(hex(SHA256.hash(Array("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu".utf8))),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
    }

    func testSHA256LongMessagesAndIncrementalUpdates() {
        // One million 'a' (FIPS 180-4 long example), fed in uneven pieces.
        var hasher = SHA256()
        var left = 1_000_000
        var size = 1
        while left > 0 {
            let piece = min(size, left)
            hasher.update([UInt8](repeating: UInt8(ascii: "a"), count: piece))
            left -= piece
            size = size * 3 % 997 + 1
        }
        XCTAssertEqual(hex(hasher.finalize()), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        // Block-boundary lengths agree between one-shot and byte-by-byte hashing.
        for length in [55, 56, 57, 63, 64, 65, 119, 120, 128] {
            let data = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 7) }
            var incremental = SHA256()
            for byte in data { incremental.update([byte]) }
            XCTAssertEqual(incremental.finalize(), SHA256.hash(data), "length \(length)")
        }
    }

    func testHMACSHA256RFC4231() {
        let cases: [(key: [UInt8], data: [UInt8], tag: String)] = [
            ([UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            (Array("Jefe".utf8), Array("what do ya want for nothing?".utf8), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
            ([UInt8](repeating: 0xaa, count: 20), [UInt8](repeating: 0xdd, count: 50), "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
            (Array(1...25), [UInt8](repeating: 0xcd, count: 50), "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
            ([UInt8](repeating: 0xaa, count: 131), Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
             "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
            ([UInt8](repeating: 0xaa, count: 131),
             Array("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".utf8),
             "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
        ]
        for (index, testCase) in cases.enumerated() {
            XCTAssertEqual(hex(AuthKey(testCase.key).tag(testCase.data)), testCase.tag, "RFC 4231 case \(index + 1)")
        }
        // Case 5: truncation to 128 bits is a prefix of the full tag.
        XCTAssertTrue(hex(AuthKey([UInt8](repeating: 0x0c, count: 20)).tag(Array("Test With Truncation".utf8))).hasPrefix("a3b6167473100ee06e0c796c2955552b"))
    }

    func testVerifyIsExactAndRejectsEveryFlippedBit() {
        let key = AuthKey(Array(0..<32))
        let message = Array("starling".utf8)
        let tag = key.tag(message)
        XCTAssertTrue(message.withUnsafeBytes { m in tag.withUnsafeBytes { key.verify(m, tag: $0) } })
        for index in 0..<tag.count {
            var bad = tag
            bad[index] ^= 0x80
            XCTAssertFalse(message.withUnsafeBytes { m in bad.withUnsafeBytes { key.verify(m, tag: $0) } })
        }
        XCTAssertFalse(message.withUnsafeBytes { m in Array(tag.prefix(31)).withUnsafeBytes { key.verify(m, tag: $0) } })
    }
}
