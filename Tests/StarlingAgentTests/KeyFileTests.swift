import Foundation
import Starling
import StarlingCore
import XCTest

/// Key files (Protocol.md §7.1) as operators write them: CRLF, comments, odd file types.
final class KeyFileTests: XCTestCase {
    let first = AuthKey([UInt8](repeating: 0xA1, count: 32))
    let second = AuthKey([UInt8](repeating: 0x0F, count: 32))
    var k1: String { String(repeating: "a1", count: 32) }
    var k2: String { String(repeating: "0F", count: 32) }

    /// issue 14 item 21: `K1 # c\r\nK2\r\n` used to load K1 only, `K1\r\nK2\r\n` to be refused.
    func testCRLFEndingsAndCommentsLoadEveryKey() throws {
        for text in ["\(k1) # c\r\n\(k2)\r\n", "\(k1)\r\n\(k2)\r\n", "\(k1)\n\(k2)\n", "\(k1)\r\n\(k2)",
                     "\u{FEFF}# keys\r\n\(k1)\t# signs\r\n\r\n  \(k2)  # verifies\r\n"] {
            XCTAssertEqual(try KeyFile.parse(text), [first, second], text.debugDescription)
        }
        for (text, message) in [("\r\n\(k1)z\r\n", "key file:2: a key is 64 hex digits"),
                                ("\(k1)\r\n\(String(repeating: "zz", count: 32))\r\n", "key file:2: not hex"),
                                ("\(k1)\r\r\n", "key file:1: a key is 64 hex digits"), ("# only\r\n", "key file holds no key")] {
            XCTAssertThrowsError(try KeyFile.parse(text), text.debugDescription) { XCTAssertEqual("\($0)", message) }
        }
    }

    /// issue 14 item 21: a FIFO key file blocked agent and CLI; `--key-file ""` read no key.
    func testOnlyARegularFileIsReadAndNothingBlocks() throws {
        let dir = NSTemporaryDirectory() + "starling-keys-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fifo = dir + "/fifo.key"
        let mkfifo = try Process.run(URL(fileURLWithPath: "/usr/bin/mkfifo"), arguments: ["-m", "600", fifo])
        mkfifo.waitUntilExit()
        XCTAssertThrowsError(try KeyFile.load(fifo)) { XCTAssertTrue("\($0)".contains("is a FIFO, not a regular file"), "\($0)") }
        XCTAssertThrowsError(try KeyFile.load(dir)) { XCTAssertTrue("\($0)".contains("is a directory"), "\($0)") }
        XCTAssertThrowsError(try KeyFile.load("")) { XCTAssertTrue("\($0)".contains("empty path"), "\($0)") }
        let file = dir + "/cluster.key"
        try "\(k1)\r\n".write(toFile: file, atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file)
        XCTAssertThrowsError(try KeyFile.load(file)) { XCTAssertTrue("\($0)".contains("readable by others"), "\($0)") }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file)
        // Links are followed (mounted secrets are links); the mode checked is the file's.
        try FileManager.default.createSymbolicLink(atPath: dir + "/link.key", withDestinationPath: file)
        XCTAssertEqual(try KeyFile.load(dir + "/link.key"), [first])
    }
}
