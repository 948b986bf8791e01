import Foundation
import Starling
import StarlingCore
import StarlingPOSIX
import XCTest

/// Running as a service (issue 20): keys rotated by SIGHUP on live agents, `starling reload`,
/// `starling keys list`, `--config` and `--log-format json`.
final class ReloadAgentTests: XCTestCase {
    override func setUpWithError() throws { try Loopback.requireMulticast() }

    let old = String(repeating: "a1", count: 32)
    let new = String(repeating: "b2", count: 32)

    /// Writes `keys` as a key file (mode 600) at `path`.
    func writeKeys(_ keys: [String], to path: String) {
        FileManager.default.createFile(atPath: path, contents: Data((keys.joined(separator: "\n") + "\n").utf8),
            attributes: [.posixPermissions: 0o600])
    }

    func fingerprint(_ hex: String) -> String { AuthKey(Hex.decode(hex) ?? []).fingerprint }

    /// `starling keys list` with `keyFile`: agent name → fingerprints (empty when none answered).
    func keysList(_ cluster: Cluster, keyFile: String) throws -> [String: [String]] {
        let (_, out, _) = try cluster.cli(["keys", "list", "--json", "--key-file", keyFile, "--timeout", "1"])
        var listed: [String: [String]] = [:]
        for row in (try? JSON.parse(out))?.arrayValue ?? [] {
            listed[row["name"]?.stringValue ?? ""] = (row["keys"]?.arrayValue ?? []).compactMap(\.stringValue)
        }
        return listed
    }

    /// True when `observer` lists `member` alive (asked with the keys of `keyFile`).
    func sees(_ cluster: Cluster, _ observer: String, _ member: String, keyFile: String) throws -> Bool {
        let (_, out, _) = try cluster.cli(["members", "--json", "--key-file", keyFile, "--to", observer, "--timeout", "1"])
        return ((try? JSON.parse(out))?.arrayValue ?? []).contains { $0["name"] == .string(member) && $0["status"] == .string("alive") }
    }

    func testSIGHUPRotatesKeysOnTwoLiveAgentsWithoutLosingAMember() throws {
        let cluster = Cluster()
        let files = ["r1", "r2"].map { "\(cluster.folder)/\($0).key" }
        for file in files { writeKeys([old], to: file) }
        let oldOnly = "\(cluster.folder)/client-old.key", newOnly = "\(cluster.folder)/client-new.key"
        writeKeys([old], to: oldOnly)
        writeKeys([new], to: newOnly)
        try cluster.start("r1", ["--key-file", files[0]])
        try cluster.start("r2", ["--key-file", files[1]])
        XCTAssertTrue(Loopback.eventually(15) { (try? self.sees(cluster, "r1", "r2", keyFile: oldOnly)) == true })
        XCTAssertTrue(Loopback.eventually(15) { (try? self.sees(cluster, "r2", "r1", keyFile: oldOnly)) == true })

        // The three steps of Protocol.md §7.1, each a SIGHUP to both agents.
        for step in [[old, new], [new, old], [new]] {
            for file in files { writeKeys(step, to: file) }
            for name in ["r1", "r2"] { cluster.children[name]?.signal(Signals.hangup) }
            let client = step.first == new ? newOnly : oldOnly
            let expected = step.map(fingerprint)
            XCTAssertTrue(Loopback.eventually(15) { (try? self.keysList(cluster, keyFile: client)) == ["r1": expected, "r2": expected] },
                "step \(step.count): \(String(describing: try? keysList(cluster, keyFile: client)))")
        }
        // The old key is gone: a client that has only it is not answered; the agents still are each other's.
        XCTAssertEqual(try keysList(cluster, keyFile: oldOnly), [:])
        let (code, _, _) = try cluster.cli(["ping", "--key-file", oldOnly, "--timeout", "1"])
        XCTAssertNotEqual(code, 0)
        XCTAssertTrue(try sees(cluster, "r1", "r2", keyFile: newOnly))
        XCTAssertTrue(try sees(cluster, "r2", "r1", keyFile: newOnly))
        for name in ["r1", "r2"] {
            let log = cluster.log(name)
            XCTAssertTrue(log.contains("reload (SIGHUP): keys \(fingerprint(new))"), log)
            XCTAssertFalse(log.contains("-> dead") || log.contains("-> suspect"), "no member lost: \(log)")
            XCTAssertNotNil(cluster.children[name], "still running")
        }
        // A key file that would turn authentication off is refused; the keys stay.
        writeKeys([], to: files[0])
        cluster.children["r1"]?.signal(Signals.hangup)
        XCTAssertTrue(Loopback.eventually { cluster.log("r1").contains("reload (SIGHUP) refused, nothing changed") }, cluster.log("r1"))
        XCTAssertEqual(try keysList(cluster, keyFile: newOnly)["r1"], [fingerprint(new)])
    }

    func testReloadCommandReadsTheConfigFileAndFlagsStillWin() throws {
        let cluster = Cluster()
        let first = "\(cluster.folder)/first.key", second = "\(cluster.folder)/second.key"
        writeKeys([old], to: first)
        writeKeys([old, new], to: second)
        let settings = "\(cluster.folder)/agent.conf"
        // The cluster passes --log-level info: that flag wins over the file, at start and at reload.
        try "# issue 20\nkey-file = \(first)\nlog-level = warning\n".write(toFile: settings, atomically: true, encoding: .utf8)
        try cluster.start("c1", ["--config", settings])
        XCTAssertTrue(Loopback.eventually(15) { (try? self.keysList(cluster, keyFile: first))?["c1"] == [self.fingerprint(old)] },
            "key-file from the settings file")
        XCTAssertTrue(cluster.log("c1").contains(" INFO "), cluster.log("c1"))

        try "key-file = \(second)\nlog-level = debug\n".write(toFile: settings, atomically: true, encoding: .utf8)
        let (code, out, err) = try cluster.cli(["reload", "c1", "--key-file", first])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(out.contains("c1 is reloading"), out)
        XCTAssertTrue(Loopback.eventually { cluster.log("c1").contains("reload (starling-cli-") }, cluster.log("c1"))
        XCTAssertTrue(cluster.log("c1").contains("keys \(fingerprint(old)), \(fingerprint(new))"), cluster.log("c1"))
        XCTAssertFalse(cluster.log("c1").contains("log level"), "--log-level on the command line wins: \(cluster.log("c1"))")
        XCTAssertEqual(try keysList(cluster, keyFile: first)["c1"], [fingerprint(old), fingerprint(new)])
        // Without a key the command is refused (exit 1) and names why.
        let (openCode, _, openErr) = try cluster.cli(["reload", "c1"])
        XCTAssertNotEqual(openCode, 0, openErr)
    }

    func testBadConfigFilesAndLogFormatsAreUsageErrors() throws {
        let folder = NSTemporaryDirectory() + "starling-config-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let cases: [(String, String)] = [
            ("colour = blue\n", "unknown setting 'colour'"),
            ("interface\n", "expected name = value"),
            ("no-multicast = maybe\n", "takes true or false"),
            ("Log-Level = info\n", "lowercase letters"),
        ]
        for (text, message) in cases {
            let path = "\(folder)/bad.conf"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            let (code, _, err) = try Loopback.run(["agent", "--config", path, "--group", Loopback.group().description])
            XCTAssertEqual(code, 2, "\(text): \(err)")
            XCTAssertTrue(err.contains(message), "\(text): \(err)")
        }
        let (code, _, err) = try Loopback.run(["agent", "--log-format", "xml"])
        XCTAssertEqual(code, 2)
        XCTAssertTrue(err.contains("--log-format takes text or json"), err)
    }

    func testJSONLogsAreOneObjectPerLineWithEventFields() throws {
        let cluster = Cluster()
        try cluster.start("j1", ["--log-format", "json"])
        try cluster.start("j2")
        XCTAssertTrue(Loopback.eventually(15) { cluster.log("j1").contains("\"event\":\"joined\"") }, cluster.log("j1"))
        let lines = cluster.log("j1").split(separator: "\n")
        XCTAssertFalse(lines.isEmpty)
        for line in lines {
            let record = try JSON.parse(String(line))
            for key in ["time", "level", "agent", "message"] { XCTAssertNotNil(record[key]?.stringValue, "\(key) in \(line)") }
            XCTAssertEqual(record["agent"], .string("j1"))
        }
        let joined = try lines.map { try JSON.parse(String($0)) }.first { $0["event"] == .string("joined") }
        XCTAssertEqual(joined?["name"], .string("j2"))
        XCTAssertEqual(joined?["level"], .string("info"))
    }
}
