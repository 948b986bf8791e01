import Starling
import StarlingCore
import XCTest

/// Display escaping of remote text for logs and tables (issue 14 item 23).
final class EscapeTests: XCTestCase {
    func testPlainTextIsKept() {
        XCTAssertEqual(Escape.display("worker-1"), "worker-1")
        XCTAssertEqual(Escape.display("café ☕ 名前"), "café ☕ 名前")
        XCTAssertEqual(Escape.display(""), "")
    }

    func testControlCharactersBecomeEscapes() {
        // issue 14 item 23: a newline can no longer start a forged log line.
        XCTAssertEqual(Escape.display("a\nb"), "a\\x0ab")
        XCTAssertEqual(Escape.display("\r\t\u{0}\u{1B}[2J"), "\\x0d\\x09\\x00\\x1b[2J")
        XCTAssertEqual(Escape.display("x\u{7F}y"), "x\\x7fy")
        XCTAssertEqual(Escape.display("\u{85}\u{9B}"), "\\u{85}\\u{9b}")  // C1: NEL, CSI
        XCTAssertEqual(Escape.display("a\u{2028}b\u{2029}"), "a\\u{2028}b\\u{2029}")
        XCTAssertEqual(Escape.display("\u{202E}evil\u{2066}"), "\\u{202e}evil\\u{2066}")  // bidi overrides
    }

    func testBackslashIsEscapedSoTheOriginalCanBeRead() {
        XCTAssertEqual(Escape.display("a\\x0a"), "a\\\\x0a")
        XCTAssertNotEqual(Escape.display("a\\x0a"), Escape.display("a\n"))
    }

    func testInvalidUTF8BytesBecomeHexEscapes() {
        XCTAssertEqual(Escape.display([0x61, 0xFF, 0x62] as [UInt8]), "a\\xffb")
        XCTAssertEqual(Escape.display([0xC3] as [UInt8]), "\\xc3")  // cut sequence
        XCTAssertEqual(Escape.display([0xC0, 0x8A] as [UInt8]), "\\xc0\\x8a")  // overlong newline
        XCTAssertEqual(Escape.display([0xED, 0xA0, 0x80] as [UInt8]), "\\xed\\xa0\\x80")  // surrogate
        XCTAssertEqual(Escape.display([0xF4, 0x90, 0x80, 0x80] as [UInt8]), "\\xf4\\x90\\x80\\x80")  // past U+10FFFF
        XCTAssertEqual(Escape.display(Array("é\n".utf8)), "é\\x0a")
    }

    func testEveryScalarGivesOneLineOfPrintableText() {
        // Exhaustive over the BMP and a slice past it: no output ever holds a control character.
        var scalars = Array(0...0xD7FF) + Array(0xE000...0x1_00FF)
        scalars.append(0x10_FFFF)
        for value in scalars {
            let text = Escape.display(String(Unicode.Scalar(UInt32(value))!))
            for scalar in text.unicodeScalars {
                let v = scalar.value
                XCTAssertFalse(v < 0x20 || (0x7F...0x9F).contains(v) || v == 0x2028 || v == 0x2029, "U+\(String(value, radix: 16)) -> \(text.debugDescription)")
            }
        }
    }
}
