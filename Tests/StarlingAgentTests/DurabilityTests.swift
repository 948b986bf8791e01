import Foundation
@_spi(Testing) import Starling
import StarlingCore
import StarlingPOSIX
import XCTest

/// A running agent whose state directory stops taking writes, and the start checks seen from the
/// CLI. Root ignores permission bits, so the failing disk is the debug-only error injection of
/// Syscalls.swift (every fsync fails, as on a full or broken disk) — see StateStoreTests.
final class DurabilityTests: XCTestCase {
    override func setUpWithError() throws { try Loopback.requireMulticast() }
    override func tearDown() { clearInjectedErrors() }

    func folder() -> String {
        let path = NSTemporaryDirectory() + "starling-durable-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func revoke(_ id: String, from client: Agent, at target: String) async throws -> Reply? {
        try await client.request("revoke", args: [id], target: target, options: RequestOptions(expected: 1, idleTimeout: .millis(300), deadline: .millis(1_500)))
            .replies.first { $0.name == target }
    }

    func stats(_ target: String, via client: Agent) async throws -> JSON? {
        try await client.request("stats", target: target, options: RequestOptions(expected: 1)).replies.first { $0.name == target }?.json
    }

    /// issue 14 item 17: 100 revokes acknowledged on a read-only state dir, 0 after restart.
    func testNoRevokeIsAcknowledgedWhileItCannotBeSaved() async throws {
        let group = Loopback.group()
        let dir = folder()
        let keeper = try Loopback.agent("keeper", group: group) { $0.stateDirectory = dir }
        let client = try Loopback.agent("client", group: group)
        defer { client.shutdown(); client.waitUntilFinished() }
        XCTAssertTrue(Loopback.eventually { keeper.members().count == 1 && client.members().count == 1 })
        let kept = try await revoke("kept", from: client, at: "keeper")
        XCTAssertEqual(kept?.status, .ok)
        let healthy = try await stats("keeper", via: client)
        XCTAssertEqual(healthy?["durable"], .bool(true))

        try inject("fsync", Array(repeating: EIO, count: 100_000))
        // The first revoke after the disk fails is either not answered (its save failed) or refused
        // (a clock save failed first) — never acknowledged.
        let first = try await revoke("while-failing-1", from: client, at: "keeper")
        XCTAssertNotEqual(first?.status, .ok, first?.body ?? "no reply")
        let second = try await revoke("while-failing-2", from: client, at: "keeper")
        XCTAssertEqual(second?.status, .error)
        XCTAssertTrue(second?.json["error"]?.stringValue?.contains("cannot keep revoked ids") == true, second?.body ?? "no reply")
        let failing = try await stats("keeper", via: client)
        XCTAssertEqual(failing?["durable"], .bool(false))
        XCTAssertTrue(failing?["durability_error"]?.stringValue?.contains("Input/output error") == true, "\(String(describing: failing))")
        // The embedding API says so too: its own reply, status error.
        let local = try await keeper.revoke(["local"])
        XCTAssertTrue(local.notDurable?.contains("Input/output error") == true, "\(local)")
        XCTAssertFalse(local.isComplete)

        clearInjectedErrors()
        // Housekeeping retries once a second; poll with a generous deadline.
        var durable = false
        for _ in 0..<100 where !durable {
            durable = try await stats("keeper", via: client)?["durable"] == .bool(true)
            if !durable { try await Task.sleep(nanoseconds: 100_000_000) }
        }
        XCTAssertTrue(durable, "saves did not resume")
        let recovered = try await stats("keeper", via: client)
        XCTAssertEqual(recovered?["durability_failures"], .int(1), "failing is one state change, logged once")
        let after = try await revoke("after", from: client, at: "keeper")
        XCTAssertEqual(after?.status, .ok)
        keeper.shutdown()
        keeper.waitUntilFinished()

        let restarted = try Loopback.agent("keeper", group: group) { $0.stateDirectory = dir }
        defer { restarted.shutdown(); restarted.waitUntilFinished() }
        for id in ["kept", "local", "after"] { XCTAssertTrue(restarted.isRevoked(id), id) }
        XCTAssertFalse(restarted.isRevoked("while-failing-2"), "a refused revoke is not stored")
    }

    /// issue 14 item 20: the reply leaves after the fsync, so a kill -9 right after the
    /// acknowledgement (no pause for a write batch) loses nothing; the restart replays the log.
    func testRevokeAcknowledgedJustBeforeKillNineSurvives() throws {
        let cluster = Cluster()
        let dir = "\(cluster.folder)/k1-state"
        try cluster.start("k1", ["--state-dir", dir])
        XCTAssertTrue(Loopback.eventually { (try? cluster.cli(["ping", "--json"]))?.0 == 0 })
        let ids = (0..<20).map { "kill-\($0)" }
        let (code, _, errors) = try cluster.cli(["revoke", "--to", "k1"] + ids)
        XCTAssertEqual(code, 0, errors)
        cluster.kill("k1")
        XCTAssertGreaterThan(try String(contentsOfFile: dir + "/revoked.log", encoding: .utf8).count, 0)
        try cluster.start("k1", ["--state-dir", dir])
        XCTAssertTrue(Loopback.eventually {
            let result = try? cluster.client().request("revoked", options: RequestOptions(expected: 1))
            return result?.replies.first?.json["count"]?.numberValue == 20
        }, cluster.log("k1"))
    }

    /// issue 14 item 17 and 21: the start checks give exit 2 and a clear message.
    func testUnusableStateDirectoriesAndKeyFilesStopTheStart() throws {
        let dir = folder()
        try "x".write(toFile: dir + "/plain", atomically: false, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir + "/state/revoked.json", withIntermediateDirectories: true)
        let cluster = Cluster()
        let group = cluster.group.description
        for (args, message) in [(["--state-dir", ""], "--state-dir needs a path"), (["--state-dir", dir + "/plain"], "Not a directory"),
                                (["--state-dir", dir + "/state"], "is a directory, not a regular file")] {
            let (code, _, errors) = try cluster.run("s", args)
            XCTAssertEqual(code, 2, "\(args): \(errors)")
            XCTAssertTrue(errors.contains(message), "\(args): \(errors)")
        }
        let (code, _, errors) = try Loopback.run(["ping", "--group", group, "--key-file", ""])
        XCTAssertEqual(code, 2, errors)
        XCTAssertTrue(errors.contains("--key-file needs a path"), errors)
    }
}
