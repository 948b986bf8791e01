import Foundation
import Starling
import StarlingCore
import XCTest

/// The built `starling` binary against agents on loopback.
final class CLITests: XCTestCase {
    override func setUpWithError() throws { try Loopback.requireMulticast() }

    func testUsageErrorsExitTwoWithAUsageLine() throws {
        for args in [["ping", "--bogus"], ["agent", "--port", "notaport"], ["nosuchcommand"], ["elect"], ["agent", "--interface", "no-such-if0"],
                     ["ping", "--group", "10.1.2.3:5"], ["agent", "--quorum", "majority"]] {
            let (code, _, errors) = try Loopback.run(args)
            XCTAssertEqual(code, 2, "\(args): \(errors)")
            XCTAssertTrue(errors.contains("usage:"), "\(args): \(errors)")
        }
        let (code, output, _) = try Loopback.run(["help", "revoke"])
        XCTAssertEqual(code, 0)
        XCTAssertTrue(output.contains("starling revoke ID..."))
    }

    func testJSONOutputsParseAndNoReplyIsExitOne() throws {
        let cluster = Cluster()
        for name in ["j1", "j2"] { try cluster.start(name) }
        XCTAssertTrue(Loopback.eventually { ((try? cluster.views()) ?? [:]).values.filter { $0.count == 1 }.count == 2 })
        var (code, output, errors) = try cluster.cli(["ping", "--json"])
        XCTAssertEqual(code, 0, errors)
        XCTAssertEqual(Set(try JSON.parse(output).arrayValue!.compactMap { $0["name"]?.stringValue }), ["j1", "j2"])
        (code, output, errors) = try cluster.cli(["members", "--json", "--to", "j1"])
        XCTAssertEqual(code, 0, errors)
        XCTAssertEqual(try JSON.parse(output).arrayValue?.count, 2)
        (code, output, errors) = try cluster.cli(["stats", "--json"])
        XCTAssertEqual(try JSON.parse(output).arrayValue?.allSatisfy { $0["clock"] != nil && $0["revoked"] != nil && $0["members"] != nil }, true)
        (code, output, errors) = try cluster.cli(["elect", "jobs", "--json"])
        XCTAssertEqual(code, 0, errors)
        let elected = try JSON.parse(output)
        XCTAssertEqual(elected["topic"]?.stringValue, "jobs")
        XCTAssertNotNil(elected["leader"]?.stringValue)
        (code, output, errors) = try cluster.cli(["leader", "jobs", "--json", "--to", "j2"])
        XCTAssertEqual(try JSON.parse(output)["leader"], elected["leader"])
        (code, output, errors) = try cluster.cli(["revoke", "r1", "--json"])
        (code, output, errors) = try cluster.cli(["revoked", "--json", "--to", "j2"])
        XCTAssertEqual(try JSON.parse(output).arrayValue?.first?["id"]?.stringValue, "r1")
        // More ids than one datagram holds: the CLI sends several requests.
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("starling-ids-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        let many = (0..<300).map { "d9b1f8a2-5c1e-4f5e-9a51-\(String(100_000_000_000 + $0))" }
        try ("# ids to revoke\n\n" + many.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        (code, output, errors) = try cluster.cli(["revoke", "--file", file])
        XCTAssertEqual(code, 0, errors)
        XCTAssertTrue(output.contains("300"), output)
        (code, output, errors) = try cluster.cli(["revoked", "--json", "--to", "j2"])
        XCTAssertEqual(try JSON.parse(output).arrayValue?.count, 301)
        (code, _, errors) = try cluster.cli(["revoke"])
        XCTAssertEqual(code, 2, "nothing to revoke is a usage error")
        (code, _, errors) = try cluster.cli(["shutdown", "j1"])
        XCTAssertEqual(code, 1, "shutdown without a key is refused")
        XCTAssertTrue(errors.contains("refused"), errors)
        (code, _, _) = try Loopback.run(["ping", "--group", Loopback.group().description, "--timeout", "0.3"])
        XCTAssertEqual(code, 1, "nobody answered")
    }

    func testDemoRunsAndLeavesNoProcessBehind() throws {
        let (code, output, errors) = try Loopback.run(["demo", "--peers", "4"])
        XCTAssertEqual(code, 0, output + errors)
        for step in ["discovery", "revoke", "mingle", "election", "kill -9"] { XCTAssertTrue(output.contains(step), output) }
        let leftovers = try Loopback.run(["ping", "--timeout", "0.3"]).1
        XCTAssertFalse(leftovers.contains("demo-"), "demo agents still answer")
    }

    /// Issue 19: the guided tour over IPv6 on ::1 (agents by seeds: multicast does not flow on lo).
    func testDemoRunsOverIPv6() throws {
        guard (try? Interface.resolve("lo", family: .ipv6)) != nil else { throw XCTSkip("no IPv6 on lo here (::1 missing)") }
        let (code, output, errors) = try Loopback.run(["demo", "--peers", "3", "--ipv6"])
        XCTAssertEqual(code, 0, output + errors)
        XCTAssertTrue(output.contains("on ::1 over IPv6"), output)
        for step in ["discovery", "revoke", "mingle", "election", "kill -9"] { XCTAssertTrue(output.contains(step), output) }
    }

    func testKeygenKeyFilePermissionsAndShutdown() throws {
        let cluster = Cluster()
        let (code, key, _) = try Loopback.run(["keygen"])
        XCTAssertEqual(code, 0)
        XCTAssertEqual(key.trimmingCharacters(in: .whitespacesAndNewlines).count, 64)
        let path = cluster.folder + "/cluster.key"
        FileManager.default.createFile(atPath: path, contents: Data(key.utf8), attributes: [.posixPermissions: 0o644])
        var (status, _, errors) = try cluster.run("k", ["--key-file", path])
        XCTAssertEqual(status, 2)
        XCTAssertTrue(errors.contains("chmod 600"), errors)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        try cluster.start("k1", ["--key-file", path])
        XCTAssertTrue(Loopback.eventually { (try? Loopback.run(["ping", "--group", cluster.group.description, "--key-file", path]).0) == 0 })
        (status, _, errors) = try Loopback.run(["shutdown", "k1", "--group", cluster.group.description, "--key-file", path])
        XCTAssertEqual(status, 0, errors)
        XCTAssertEqual(cluster.children["k1"]?.wait(timeoutMillis: 5_000), 0, "the agent stopped cleanly")
        cluster.children["k1"] = nil
    }
}
