import Foundation
import Starling
import StarlingCore
import StarlingTestSupport
import XCTest

/// Runs `starling-conformance` against real agents on loopback — and against agents with a
/// deliberate protocol fault, to prove the matching case can fail.
final class ConformanceTests: XCTestCase {
    override func setUpWithError() throws { try Loopback.requireMulticast() }

    var suite: String {
        URL(fileURLWithPath: Loopback.binary).deletingLastPathComponent().appendingPathComponent("starling-conformance").path
    }

    func runSuite(agentArgs: [String] = [], suiteArgs: [String] = []) throws -> (Int32, String) {
        let cluster = Cluster()
        try cluster.start("target", agentArgs)
        let finished = try ChildProcess.run(suite, ["--group", cluster.group.description, "--interface", "lo"] + suiteArgs)
        return (finished.code, finished.stdout)
    }

    func testStarlingAgentPassesEveryCase() throws {
        let (code, output) = try runSuite()
        XCTAssertEqual(code, 0, output)
        XCTAssertTrue(output.contains("0 failed"), output)
        XCTAssertFalse(output.contains("FAIL"), output)
    }

    func testKeyedAgentPassesTheTagAndReplayCases() throws {
        let folder = NSTemporaryDirectory() + "starling-conf-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let key = folder + "/cluster.key"
        FileManager.default.createFile(atPath: key, contents: Data((String(repeating: "ab", count: 32) + "\n").utf8), attributes: [.posixPermissions: 0o600])
        let (code, output) = try runSuite(agentArgs: ["--key-file", key], suiteArgs: ["--key-file", key])
        XCTAssertEqual(code, 0, output)
        for name in ["7.2/rejects-missing-tag", "7.2/rejects-wrong-tag", "7.3/rejects-replayed-datagram", "7.3/refuses-stale-command"] {
            XCTAssertTrue(output.contains("pass     \(name)"), output)
        }
    }

    func testBrokenAgentsFailTheMatchingCase() throws {
        for (fault, failing) in [("no-clock-adjust", "4.2/adjusts-clock-past-received-stamp"), ("ignore-probes", "6.1.5/answers-ping-with-ack"),
                                 ("elect-highest", "4.3/never-prefers-higher-stamp"), ("no-witness", "6.1.6/witness-pings-suspect-at-once"),
                                 ("tags-any-incarnation", "3.4.1/holds-tags-by-incarnation"),
                                 ("adopt-hearsay-death", "6.1.3/hearsay-death-over-suspicion-waits"),
                                 ("keep-stale-verdicts", "6.1.3/hearsay-of-life-tells-the-dead"),
                                 ("loud-accusations", "6.1.5/quiet-accusation-after-comeback"),
                                 ("loud-death-checks", "6.1.3/failed-death-check-by-no-witness-is-quiet")] {
            let (code, output) = try runSuite(agentArgs: ["--test-fault", fault])
            XCTAssertEqual(code, 1, "\(fault): \(output)")
            XCTAssertTrue(output.contains("FAIL     \(failing)"), "\(fault): \(output)")
        }
    }
}
