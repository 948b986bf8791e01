import Starling
import StarlingCore
import XCTest

/// What the CLI shows for forged reply bodies: numbers out of range, of the wrong type, missing;
/// control characters in remote strings. No sockets: bodies go straight to the renderers.
final class CLIDisplayTests: XCTestCase {
    func body(_ text: String) throws -> JSON { try JSON.parse(text) }

    /// Numbers a hostile reply may carry in any integer field.
    let forgedNumbers = ["1e30", "-5", "-0.5", "1.5", "1e400", "-1e400", "18446744073709551616", "2e19", "\"12\"", "true", "null",
                         "[]", "{}"]

    func testIssue14Item5CheckedNumberConversions() throws {
        XCTAssertEqual(try body("0").uint64Value, 0)
        XCTAssertEqual(try body("18446744073709549568").uint64Value, 18_446_744_073_709_549_568)
        XCTAssertNil(try body("18446744073709551616").uint64Value)
        XCTAssertNil(try body("-1").uint64Value)
        XCTAssertNil(try body("1.5").uint64Value)
        XCTAssertNil(try body("1e400").uint64Value, "infinity")
        XCTAssertNil(try body("\"7\"").uint64Value)
        XCTAssertEqual(try body("-9223372036854775808").int64Value, Int64.min)
        XCTAssertNil(try body("9223372036854775808").int64Value)
        XCTAssertNil(try body("-1e30").int64Value)
        XCTAssertEqual(Display.count(try body("42")), "42")
        XCTAssertEqual(Display.count(nil), "-")
        for number in forgedNumbers where number != "null" {
            XCTAssertEqual(Display.count(try body(number)), "?", number)
        }
    }

    func testIssue14Item5WatchWithForgedTimes() throws {
        for number in forgedNumbers + ["18446744073709552", "18446744073709551"] {
            let line = try XCTUnwrap(Display.watchLine(try body("{\"time_ms\":\(number),\"source\":\"a\",\"event\":\"joined\",\"name\":\"b\"}")))
            XCTAssertTrue(line.hasPrefix("?"), "\(number): \(line)")
            XCTAssertTrue(line.contains("joined  name=b"), line)
        }
        XCTAssertTrue(try XCTUnwrap(Display.watchLine(try body("{\"time_ms\":0,\"event\":\"x\"}"))).hasPrefix("1970-01-01T00:00:00.000Z"))
        XCTAssertNotNil(Display.watchLine(try body("{}")), "missing fields")
        XCTAssertNotNil(Display.watchLine(try body("[1,2]")), "not an object")
        XCTAssertNotNil(Display.watchLine(.null), "not JSON at all")
        XCTAssertNil(Display.watchLine(try body("{\"event\":\"watching\"}")))
        let forged = try XCTUnwrap(Display.watchLine(try body("{\"time_ms\":1,\"source\":\"a\\u001b[2J\",\"event\":\"left\\nFAKE LINE\"}")))
        XCTAssertFalse(forged.contains("\u{1b}") || forged.contains("\n"), forged)
    }

    func testIssue14Item5RevokedWithForgedTimes() throws {
        for number in forgedNumbers {
            let line = Display.revokedLine(try body("{\"id\":\"r1\",\"revoked_at_ms\":\(number)}"))
            XCTAssertTrue(line.hasPrefix("?"), "\(number): \(line)")
            XCTAssertTrue(line.hasSuffix("  r1"), line)
            XCTAssertEqual(line.count, Display.revokedLine(try body("{\"id\":\"r1\",\"revoked_at_ms\":0}")).count, "columns stay aligned")
        }
        XCTAssertEqual(Display.revokedLine(try body("{\"id\":\"a\\u0007b\\u009bc\",\"revoked_at_ms\":0}")), "1970-01-01T00:00:00.000Z  a\\x07b\\u{9b}c")
        XCTAssertTrue(Display.revokedLine(try body("{\"id\":5}")).hasSuffix("  5"))
        XCTAssertTrue(Display.revokedLine(try body("{}")).hasSuffix("  -"))
        XCTAssertTrue(Display.revokedLine(try body("\"not an object\"")).hasPrefix("?"))
    }

    func testIssue14Item5TopWithForgedCounters() throws {
        var previous: Display.Traffic = [:]
        for number in forgedNumbers {
            let document = try body("""
                {"name":"a","datagrams_in":\(number),"datagrams_out":\(number),"resident_bytes":\(number),"clock":\(number),
                 "incarnation":\(number),"revoked":\(number),"members":{"alive":\(number),"suspect":\(number),"dead":1,"left":0}}
                """)
            let rows = Display.topRows([document, document], previous: &previous)
            XCTAssertEqual(rows.count, 2)
            XCTAssertEqual(rows[0][9], "?", number)
            XCTAssertEqual(rows[0][5], number == "null" ? "-" : "?", number)
        }
        // Rates: a counter that went back (a restart) or became unknown shows "?".
        previous = [:]
        func round(_ inCount: String, _ outCount: String) throws -> String {
            try Display.topRows([try body("{\"name\":\"a\",\"datagrams_in\":\(inCount),\"datagrams_out\":\(outCount)}")], previous: &previous)[0][8]
        }
        XCTAssertEqual(try round("10", "20"), "-")
        XCTAssertEqual(try round("15", "27"), "5/7")
        XCTAssertEqual(try round("3", "1e30"), "?/?")
        XCTAssertEqual(try round("4", "9"), "1/?")
        _ = Display.topRows([try body("{\"name\":\"b\"}")], previous: &previous)
        XCTAssertEqual(Array(previous.keys), ["b"], "only agents that answered are remembered")
        XCTAssertEqual(Display.topRows([try body("{\"members\":[1],\"name\":7}"), .null], previous: &previous).count, 2, "wrong types")
        XCTAssertEqual(Display.topRows([try body("{\"name\":\"a\",\"resident_bytes\":5242880}")], previous: &previous)[0][9], "5 MB")
        XCTAssertEqual(Display.leadersLine(try body("{\"leaders\":{\"jobs\\n\":\"x\\u001b\",\"n\":null}}")), "leaders: jobs\\x0a=x\\x1b  n=-")
        XCTAssertNil(Display.leadersLine(try body("{\"leaders\":[1]}")))
    }

    func testIssue14Item5MembersStatsPingWithForgedBodies() throws {
        let members = try body("""
            {"name":"a","members":[{"name":"x\\u001b[31m","status":"alive","address":"127.0.0.1:1","incarnation":-1,"clock":1e30,
             "last_heard_ms":"soon"},{"name":1e30},[],null,{"incarnation":4294967295,"clock":7,"last_heard_ms":2.5}]}
            """)
        let rows = Display.memberRows(members)
        XCTAssertEqual(rows.count, 5)
        XCTAssertEqual(rows[0], ["x\\x1b[31m", "alive", "127.0.0.1:1", "?", "?", "? ms", "-"])
        XCTAssertEqual(rows[4], ["-", "-", "-", "4294967295", "7", "? ms", "-"])
        XCTAssertEqual(Display.memberRows(try body("{\"members\":{}}")), [])
        XCTAssertFalse(Display.table(Display.membersHeader, rows).contains("\u{1b}"))
        XCTAssertEqual(Display.table(["A"], [["x", "extra", "cells"]]), "A\nx  extra  cells", "a row wider than the header")

        let stats = Display.stats(try body("{\"name\":\"a\\nb\",\"clock\":1e30,\"datagrams_in\":-5,\"nested\":{\"k\\u0000\":\"\\u0085\"}}"))
        XCTAssertTrue(stats.hasPrefix("a\\x0ab\n"), stats)
        XCTAssertFalse(stats.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" || (0x7F...0x9F).contains($0.value) }, stats)
        XCTAssertEqual(Display.stats(.null), "-")
        XCTAssertEqual(Display.stats(try body("[\"\\u001b\"]")), "[\"\\\\u001b\"]", "JSON text, its backslash escaped like any other (Escape.display)")

        for number in forgedNumbers {
            let reply = Reply(name: "p\u{7}", id: NodeID(high: 1, low: 2), status: .ok, body: "{\"clock\":\(number)}")
            let row = Display.pingRow(reply, elapsedNanos: UInt64.max)
            XCTAssertEqual(row[2], number == "null" ? "-" : "?", number)
            XCTAssertEqual(Display.table(Display.pingHeader, [row]).split(separator: "\n")[1].prefix(5), "p\\x07")
        }
        XCTAssertEqual(Display.pingRow(Reply(name: "p", id: NodeID(high: 0, low: 0), status: .ok, body: "not json"), elapsedNanos: 0)[2], "-")

        XCTAssertEqual(Display.leader(try body("{\"leader\":\"l\\u001b\",\"term\":-1}")), "leader l\\x1b, term ?")
        XCTAssertEqual(Display.leader(try body("{\"leader\":null}")), "leader none, term 0")
        XCTAssertEqual(Display.clockRow(try body("{\"name\":\"c\",\"clock\":1e30,\"incarnation\":3}")), ["c", "?", "3"])
        XCTAssertNil(Display.addStored(UInt64.max, try body("{\"stored\":1}")), "a sum that would wrap")
        XCTAssertNil(Display.addStored(0, try body("{\"stored\":-5}")))
        XCTAssertEqual(Display.addStored(2, try body("{\"stored\":3}")), 5)
        XCTAssertEqual(Display.addStored(2, try body("{}")), 2)
    }

    func testIssue14Item26RemoteStringsAreEscaped() {
        XCTAssertEqual(Escape.display("plain café ✓"), "plain café ✓")
        XCTAssertEqual(Escape.display("a\nb\r\u{0}\u{1b}[2J\u{7f}\u{80}\u{9f}\u{a0}"), "a\\x0ab\\x0d\\x00\\x1b[2J\\x7f\\u{80}\\u{9f}\u{a0}")
        XCTAssertEqual(Display.incomplete([RequestProgress.Partial(name: "x\n", id: NodeID(high: 0, low: 1), received: 37, pageCount: 40)]),
                       ["incomplete reply from x\\x0a: 3 of 40 pages missing"])
    }
}
