import Foundation
@_spi(Testing) import Starling
import StarlingCore
import XCTest

/// Agents as separate processes on loopback: discovery, kill -9, clean stop, durable state.
final class ProcessClusterTests: XCTestCase {
    override func setUpWithError() throws { try Loopback.requireMulticast() }

    func testDiscoveryCrashDetectionAndCleanLeave() throws {
        let cluster = Cluster()
        let names = (1...4).map { "p\($0)" }
        for name in names { try cluster.start(name) }
        XCTAssertTrue(Loopback.eventually {
            let views = (try? cluster.views()) ?? [:]
            return views.count == 4 && views.values.allSatisfy { $0.count == 3 && $0.values.allSatisfy { $0 == "alive" } }
        }, "agents did not discover each other: \((try? cluster.views()) ?? [:])")
        cluster.kill("p2")
        XCTAssertTrue(Loopback.eventually {
            let views = (try? cluster.views()) ?? [:]
            return views.count == 3 && views.values.allSatisfy { $0["p2"] == "dead" }
        }, "kill -9 not detected: \((try? cluster.views()) ?? [:])")
        cluster.stop("p3")
        XCTAssertTrue(Loopback.eventually {
            let views = (try? cluster.views()) ?? [:]
            return views.count == 2 && views.values.allSatisfy { $0["p3"] == "left" }
        }, "clean stop not seen as left: \((try? cluster.views()) ?? [:])")
        XCTAssertTrue(cluster.log("p1").contains("p2"), "membership changes are logged")
    }

    func testAcknowledgedRevokesSurviveKillingEveryAgent() throws {
        let cluster = Cluster()
        for name in ["s1", "s2", "s3"] { try cluster.start(name, ["--state-dir", "\(cluster.folder)/\(name)-state"]) }
        XCTAssertTrue(Loopback.eventually { ((try? cluster.views()) ?? [:]).values.filter { $0.count == 2 }.count == 3 })
        let (code, output, errors) = try cluster.cli(["revoke", "job-1", "job-2", "job-3", "--json"])
        XCTAssertEqual(code, 0, errors)
        XCTAssertEqual((try JSON.parse(output)).arrayValue?.count, 3)
        usleep(300_000)  // longer than the 100 ms write batch
        for name in ["s1", "s2", "s3"] { cluster.kill(name) }
        for name in ["s1", "s2", "s3"] { try cluster.start(name, ["--state-dir", "\(cluster.folder)/\(name)-state"]) }
        XCTAssertTrue(Loopback.eventually {
            let result = try? cluster.client().request("revoked", options: RequestOptions(idleTimeout: 200_000_000, deadline: 1_000_000_000))
            return result?.replies.count == 3 && result!.replies.allSatisfy { $0.json["count"]?.numberValue == 3 }
        }, "revoked ids lost across kill -9")
    }

    func testCorruptStateFileIsKeptAsideAndReported() throws {
        let cluster = Cluster()
        let dir = "\(cluster.folder)/state"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "{not json".write(toFile: "\(dir)/revoked.json", atomically: true, encoding: .utf8)
        let (code, _, errors) = try cluster.run("c1", ["--state-dir", dir, "--strict-state"])
        XCTAssertEqual(code, 2)
        XCTAssertTrue(errors.contains("unreadable"), errors)
        try cluster.start("c1", ["--state-dir", dir])
        XCTAssertTrue(Loopback.eventually { cluster.log("c1").contains("set aside") }, cluster.log("c1"))
        let files = try FileManager.default.contentsOfDirectory(atPath: dir)
        XCTAssertTrue(files.contains { $0.hasPrefix("revoked.json.corrupt-") }, "\(files)")
    }
}
