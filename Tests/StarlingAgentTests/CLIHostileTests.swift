import Foundation
import Starling
import StarlingCore
import StarlingTestSupport
import XCTest

/// The built `starling` binary against bad flags, forged replies, lost pages and 50,000 revoked
/// ids (issue 14 items 5 and 26). Everything stays on loopback.
final class CLIHostileTests: XCTestCase {
    override func setUpWithError() throws { try Loopback.requireMulticast() }

    /// Runs the CLI with a deadline (a flag that is wrongly accepted must not hang the test on a
    /// running agent): (exit code, stdout, stderr, ended by a signal).
    func run(_ args: [String], seconds: UInt64 = 20) throws -> (code: Int32, out: String, err: String, signalled: Bool) {
        let finished = try ChildProcess.run(Loopback.binary, args, timeoutMillis: seconds * 1_000)
        if finished.timedOut { XCTFail("\(args) still ran after \(seconds) s") }
        return (finished.code, finished.stdout, finished.stderr, finished.signal != 0)
    }

    func testIssue14Item26BadFlagsExitTwoWithAUsageLine() throws {
        let group = Loopback.group().description
        let folder = NSTemporaryDirectory() + "starling-flags-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let long = { (count: Int) in String(repeating: "x", count: count) }
        let cases: [[String]] = [
            ["ping", "--group", "239.255.83.84:0"], ["agent", "--group", "239.255.83.84:0"],
            ["ping", "--cluster", ""], ["ping", "--cluster", long(33)], ["agent", "--cluster", long(33)], ["agent", "--cluster", "a\u{1b}b"],
            ["ping", "--to", long(129)], ["revoked", "--to", long(129)],
            ["agent", "--name", "a\nb"], ["agent", "--name", "tab\there"], ["agent", "--name", "del\u{7f}"], ["agent", "--name", long(65)],
            ["agent", "--name", ""],
            ["agent", "--event-log", "\(folder)/no-such-dir/events"], ["agent", "--event-log", folder], ["agent", "--event-log", ""],
            ["ping", "--key-file", ""], ["agent", "--key-file", ""], ["revoke", "r1", "--key-file="],
            ["agent", "--port", "70000"], ["agent", "--port", "-1"], ["revoked", "--limit", "-1"], ["revoked", "--limit", "0"],
            ["revoked", "--limit", "1e3"], ["agent", "--quorum", "majority", "--expect", "0"], ["agent", "--expect", "65536"], ["agent", "--settle", "61"], ["agent", "--settle", "-0.1"], ["agent", "--settle", "nan"],
            ["agent", "--protocol-period", "0"], ["agent", "--protocol-period", "1e9"], ["agent", "--protocol-period", "nan"],
            ["agent", "--election-timeout", "0"], ["agent", "--revoked-max-age", "0"], ["agent", "--max-revoked", "0"],
            ["agent", "--delay-ms", "-1"], ["agent", "--drop-rate", "nan"], ["ping", "--timeout", "0"], ["ping", "--timeout", "inf"],
            ["watch", "--timeout", "1e300"], ["demo", "--peers", "1"], ["demo", "--peers", "99999999999999999999"],
            ["agent", "--seed", "127.0.0.1:0"], ["ping", "--seed", "127.0.0.1:0"], ["agent", "--state-dir", ""],
            ["revoke", "--file", ""], ["revoke", long(129)], ["elect", long(65)], ["leader", "a\nb"], ["shutdown", "x\u{7}"],
        ]
        for args in cases {
            let extra = args.contains("--group") || args[0] == "demo" ? [] : ["--group", group]
            let result = try run(args + extra)
            XCTAssertEqual(result.code, 2, "\(args): \(result.err)")
            XCTAssertTrue(result.err.contains("usage:"), "\(args): \(result.err)")
            XCTAssertFalse(result.err.contains("\u{1b}") || result.err.contains("\u{7}"), "remote or flag text is escaped: \(args)")
        }
        let unwritable = try run(["agent", "--event-log", "\(folder)/no-such-dir/events", "--group", group])
        XCTAssertTrue(unwritable.err.contains("\(folder)/no-such-dir/events") && unwritable.err.contains("No such file"), unwritable.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(folder)/no-such-dir"))
    }

    func testIssue14Item26NoAnswerIsSaidOnlyWhenNothingCame() throws {
        let nobody = try run(["ping", "--group", Loopback.group().description, "--timeout", "0.3"])
        XCTAssertEqual(nobody.code, 1)
        XCTAssertTrue(nobody.err.contains("no agent answered"), nobody.err)

        // 40 pages, of which the agent sends 37 and re-sends the same 37 when asked again.
        let group = Loopback.group()
        let body = JSON.object([("name", .string("lossy")), ("padding", .string(String(repeating: "p", count: 39_500)))]).serialized()
        XCTAssertEqual((body.utf8.count + 999) / 1_000, 40)
        let fake = try FakeAgent(name: "lossy", group: group) { request in
            request.command == "stats" ? FakeAgent.Answer(body, only: Set(0..<40).subtracting([5, 17, 39])) : nil
        }
        defer { fake.stop() }
        let partial = try run(["stats", "--to", "lossy", "--group", group.description])
        XCTAssertEqual(partial.code, 1)
        XCTAssertTrue(partial.err.contains("incomplete reply from lossy: 3 of 40 pages missing"), partial.err)
        XCTAssertFalse(partial.err.contains("no agent answered"), partial.err)
        XCTAssertEqual(fake.requests.count, 3, "the CLI asked twice more for the missing pages")
    }

    func testIssue14Item26ReceiveBufferIsRaised() throws {
        let client = try ControlClient(group: Loopback.group())
        let maximum = (try? String(contentsOfFile: "/proc/sys/net/core/rmem_max", encoding: .utf8))
            .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
        // Linux grants min(asked, rmem_max) and reports twice that.
        XCTAssertGreaterThanOrEqual(client.receiveBuffer, 2 * min(ControlClient.receiveBufferRequest, maximum))
        XCTAssertGreaterThan(client.receiveBuffer, 0)
    }

    func testIssue14Item26RevokedPagesThroughFiftyThousandIds() throws {
        let group = Loopback.group()
        let ids = (0..<50_000).map { "d9b1f8a2-5c1e-4f5e-9a51-\(String(100_000_000_000 + $0))" }
        let fake = try FakeAgent(name: "pager", group: group, lifetimeSeconds: 60, answer: FakeAgent.pagedRevoked(ids, name: "pager"))
        defer { fake.stop() }
        let (code, output, errors) = try Loopback.run(["revoked", "--group", group.description, "--timeout", "5"])
        XCTAssertEqual(code, 0, errors)
        let lines = output.split(separator: "\n")
        XCTAssertEqual(lines.first, "pager holds 50000 revoked ids")
        XCTAssertEqual(lines.count, 50_002)
        XCTAssertEqual(lines.dropFirst(2).map { String($0.split(separator: " ").last ?? "") }, ids)
        let requests = fake.requests.filter { $0.command == "revoked" }
        XCTAssertEqual(Set(requests.map(\.requestID)).count, 250, "pages of 200")
        XCTAssertEqual(requests.last?.args, ["200", ids[49_799]])
        XCTAssertTrue(requests.dropFirst().allSatisfy { $0.target == "pager" }, "later pages go to the same agent")

        let (limited, json, _) = try Loopback.run(["revoked", "--group", group.description, "--limit", "450", "--json"])
        XCTAssertEqual(limited, 0)
        XCTAssertEqual(try JSON.parse(json).arrayValue?.compactMap { $0["id"]?.stringValue }, Array(ids.prefix(450)))
    }

    func testIssue14Item26RevokedFromATodaysAgentAtFiftyThousandIds() throws {
        let cluster = Cluster()
        try cluster.start("big")
        XCTAssertTrue(Loopback.eventually { (try? cluster.cli(["ping", "--to", "big"]).0) == 0 })
        let file = cluster.folder + "/ids"
        try (0..<50_000).map { "id-\(1_000_000 + $0)" }.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        var (code, output, errors) = try cluster.cli(["revoke", "--file", file, "--to", "big", "--timeout", "10"])
        XCTAssertEqual(code, 0, errors)
        (code, output, errors) = try cluster.cli(["revoked", "--to", "big", "--timeout", "10"])
        XCTAssertEqual(code, 0, errors)
        XCTAssertEqual(output.split(separator: "\n").count, 50_002, errors)
        XCTAssertFalse(errors.contains("no agent answered"), errors)
    }

    func testIssue14Item5ForgedRepliesNeverCrashTheCLI() throws {
        let group = Loopback.group()
        let huge = "1e30"
        let bodies: [String: String] = [
            "watch": "{\"time_ms\":\(huge),\"source\":\"f\\u001b[2J\",\"event\":\"joined\",\"name\":\"n\\nFAKE\"}",
            "revoked": "{\"name\":\"forged\",\"count\":-3,\"ids\":[{\"id\":\"a\",\"revoked_at_ms\":\(huge)},{\"id\":7,\"revoked_at_ms\":-1},{},1],\"more\":false}",
            "stats": "{\"name\":\"forged\",\"datagrams_in\":-5,\"datagrams_out\":1e400,\"resident_bytes\":-1,\"clock\":2.5,\"members\":{\"alive\":\"x\"},\"leaders\":{\"t\":1e30}}",
            "members": "{\"name\":\"forged\",\"members\":[{\"name\":\"m\\u0007\",\"incarnation\":-1,\"clock\":1e30,\"last_heard_ms\":-5},7]}",
            "ping": "{\"name\":\"forged\",\"clock\":-1e30}",
            "clock": "{\"name\":\"forged\",\"clock\":1e30,\"incarnation\":-1}",
            "revoke": "{\"name\":\"forged\",\"stored\":1e30,\"count\":-1}",
            "leader": "{\"name\":\"forged\",\"leader\":5,\"term\":-1}",
        ]
        let fake = try FakeAgent(name: "forged", group: group) { request in bodies[request.command].map { FakeAgent.Answer($0) } }
        defer { fake.stop() }
        let g = group.description
        for args in [["watch", "--timeout", "1"], ["revoked"], ["revoked", "--json"], ["stats"], ["members"], ["ping"], ["clock"],
                     ["revoke", "r1"], ["leader", "t"], ["top", "--timeout", "1"], ["revoke", "r1", "--json"]] {
            let result = try run(args + ["--group", g, "--to", "forged"])
            XCTAssertFalse(result.signalled, "\(args) crashed: \(result.err)")
            XCTAssertTrue([0, 1].contains(result.code), "\(args): \(result.code) \(result.err)")
            XCTAssertFalse(result.out.contains("\u{1b}[2J") || result.out.contains("\u{7}"), "\(args): control characters reach the terminal")
            if args.contains("--json") {
                XCTAssertNotNil(try? JSON.parse(result.out), "\(args): one JSON document: \(result.out)")
            } else if args == ["stats"] {
                XCTAssertTrue(result.out.contains("datagrams_in    -5"), "stats shows fields as sent: \(result.out)")
            } else {
                XCTAssertTrue(result.out.contains("?"), "\(args): \(result.out)")
            }
        }
        XCTAssertTrue(try run(["watch", "--timeout", "1", "--group", g]).out.contains("n\\x0aFAKE"))
    }
}
