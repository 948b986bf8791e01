import StarlingCore
import XCTest

/// Issue 15, item "one hex codec": every hex in the project goes through `Hex`, and decoding
/// hostile text never traps.
final class HexTests: XCTestCase {
    func testEncodesBytesAndFixedWidthValues() {
        XCTAssertEqual(Hex.encode([0x00, 0x0F, 0xA5, 0xFF]), "000fa5ff")
        XCTAssertEqual(Hex.encode([UInt8]()), "")
        XCTAssertEqual(Hex.encode(UInt64(0)), "0000000000000000")
        XCTAssertEqual(Hex.encode(UInt64(0x1F)), "000000000000001f")
        XCTAssertEqual(Hex.encode(UInt64.max), "ffffffffffffffff")
    }

    func testDecodesEitherCase() throws {
        XCTAssertEqual(try Hex.decode(utf8: "00fFa5".utf8), [0x00, 0xFF, 0xA5])
        XCTAssertEqual(Hex.decode(""), [])
        XCTAssertEqual(Hex.decodeUInt64(utf8: "00000000DEADbeef".utf8), 0xDEAD_BEEF)
    }

    func testHostileTextIsATypedError() {
        XCTAssertThrowsError(try Hex.decode(utf8: "abc".utf8)) { XCTAssertEqual($0 as? Hex.DecodeError, .oddLength(3)) }
        XCTAssertThrowsError(try Hex.decode(utf8: "0g".utf8)) { XCTAssertEqual($0 as? Hex.DecodeError, .notHex(offset: 1)) }
        // "é" is two UTF-8 bytes: even length, neither a digit.
        XCTAssertThrowsError(try Hex.decode(utf8: "é0a".utf8)) { XCTAssertEqual($0 as? Hex.DecodeError, .notHex(offset: 0)) }
        for text in ["+f", "-0", " 1", "0x", "\u{0}\u{0}", "\u{FF10}"] { XCTAssertNil(Hex.decode(text), text) }
        // Integer parsing takes a sign; a hex field does not.
        XCTAssertNil(Hex.decodeUInt64(utf8: "+000000000000001".utf8))
        XCTAssertNil(Hex.decodeUInt64(utf8: "0000000000000001f".utf8))
    }

    func testNodeIDRoundTripsAndRefusesWhatIsNotItsForm() {
        let id = NodeID(high: 0x0123_4567_89AB_CDEF, low: 0x0F)
        XCTAssertEqual(id.description, "0123456789abcdef000000000000000f")
        XCTAssertEqual(NodeID(hex: id.description), id)
        XCTAssertEqual(NodeID(hex: id.description.uppercased()), id)
        XCTAssertNil(NodeID(hex: "+123456789abcdef000000000000000f"))
        XCTAssertNil(NodeID(hex: String(id.description.dropLast())))
        XCTAssertNil(NodeID(hex: "é" + String(id.description.dropFirst(2))))
    }

    func testJSONUnicodeEscapeIsFourDigits() throws {
        XCTAssertEqual(try JSON.parse("\"\\u00e9\\u00E9\""), .string("éé"))
        XCTAssertThrowsError(try JSON.parse("\"\\u+0e9\""))
        XCTAssertThrowsError(try JSON.parse("\"\\u00\""))
        XCTAssertEqual(JSON.string("\u{7F}\u{2028}").serialized(), "\"\\u007f\\u2028\"")
    }
}
