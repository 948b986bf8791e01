import Foundation
@_spi(Testing) import Starling
import StarlingCore
import StarlingTestSupport
import XCTest

/// Remote strings in an agent's log and event log (issue 14 item 23).
final class LogEscapingTests: XCTestCase {
    override func setUpWithError() throws { try Loopback.requireMulticast() }

    func testHostileNamesAndTopicsStayOnOneLogLine() throws {
        // A name with a newline used to forge a whole log line of its own.
        let cluster = Cluster()
        try cluster.start("honest")
        let name = "evil\n2026-01-01T00:00:00.000Z ERROR [honest] forged\u{1B}[2J\u{85}"
        let evil = try Loopback.agent(name, group: cluster.group) { $0.anyName = true }
        defer { evil.shutdown(); evil.waitUntilFinished() }
        XCTAssertTrue(Loopback.eventually { cluster.log("honest").contains("joined") }, cluster.log("honest"))
        Task { _ = try? await evil.elect("topic\r\nERROR forged too") }
        XCTAssertTrue(Loopback.eventually { cluster.log("honest").contains("election 'topic") }, cluster.log("honest"))
        let log = cluster.log("honest")
        let lines = log.split(separator: "\n")
        XCTAssertTrue(lines.contains { $0.contains("member evil\\x0a2026-01-01T00:00:00.000Z ERROR [honest] forged\\x1b[2J\\u{85} (") }, log)
        XCTAssertTrue(lines.contains { $0.contains("election 'topic\\x0d\\x0aERROR forged too'") }, log)
        for line in lines {
            XCTAssertTrue(line.utf8.first.map { (0x30...0x39).contains($0) } ?? false, "every line starts with a timestamp: \(line.debugDescription)")
            XCTAssertFalse(line.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }, line.debugDescription)
        }
        // The event log is JSON lines: one record per line, the name intact inside it.
        let records = EventLog.read(cluster.agents.eventLog("honest"))
        let raw = (try? String(contentsOfFile: cluster.agents.eventLog("honest"), encoding: .utf8)) ?? ""
        XCTAssertEqual(records.count, raw.split(separator: "\n").count, raw)
        XCTAssertTrue(records.contains { $0.event["name"]?.stringValue == name }, raw)
        XCTAssertFalse(raw.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" || (0x7F...0x9F).contains($0.value) }, raw)
    }
}
