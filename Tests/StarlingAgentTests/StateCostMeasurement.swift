import Foundation
@testable import Starling
import StarlingCore
import StarlingPOSIX
import XCTest

/// The figure for issue 14 item 20: CPU per revoke spent keeping the revoked set durable while
/// 50,000 ids are held — rewriting the whole file per save (before) against appending the change
/// (after), in the same run. Speed is reported, never asserted; the test checks only that both
/// ways kept every id. Run in release:
/// `STARLING_MEASURE=1 swift test -c release -Xswiftc -enable-testing --filter StateCostMeasurement`
final class StateCostMeasurement: XCTestCase {
    func testCostPerRevokeWith50000IdsHeld() throws {
        guard ProcessInfo.processInfo.environment["STARLING_MEASURE"] == "1" else {
            throw XCTSkip("a measurement, not a check: set STARLING_MEASURE=1 to print µs per revoke")
        }
        let dir = NSTemporaryDirectory() + "starling-cost-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/before", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let wall = System.now().wallMillis
        let held = (0..<50_000).map { RevokedEntry(id: "d9b1f8a2-5c1e-4f5e-9a51-\(100_000_000_000 + $0)", revokedAtMillis: wall) }
        var config = PeerConfig(name: "cost", id: NodeID(high: 1, low: 1))
        config.revokedMaxCount = 100_000  // no eviction: only the cost of keeping the set is measured
        func peer() -> Peer { Peer(config: config, revoked: held, nowMillis: wall) }
        func newID(_ round: String, _ index: Int) -> String { "\(round)-7c1e-4f5e-9a51-\(100_000_000_000 + index)" }

        // The core alone, to subtract.
        var core = peer()
        let coreCost = measure(2_000) { index in _ = core.revoke([newID("core", index)], now: System.now()) }

        // Before: every save serialised the whole set and replaced revoked.json.
        var before = peer()
        let rewrite = measure(100) { index in
            _ = before.revoke([newID("before", index)], now: System.now())
            let document = JSON.object([("version", .int(1)), ("revoked", StateStore.entriesJSON(before.revokedEntries()))])
            try? System.writeAtomically(dir + "/before/revoked.json", Array(document.serialized().utf8))
        }

        // After: the change appended to revoked.log and fsynced.
        var after = peer()
        let store = try StateStore(directory: dir + "/after")
        _ = try store.load(strict: true, nowMillis: wall, maxCount: config.revokedMaxCount, maxAgeMillis: config.revokedMaxAgeMillis)
        try store.start(snapshot: after.revokedEntries())
        after.startRevokedJournal()
        let append = measure(2_000) { index in
            _ = after.revoke([newID("after", index)], now: System.now())
            let changes = after.takeRevokedChanges()
            try? store.save(changes, snapshot: store.wantsSnapshot ? after.revokedEntries() : nil)
        }
        // Compaction, spread over the revokes that grow the log to twice the snapshot.
        let snapshotBytes = try FileManager.default.attributesOfItem(atPath: dir + "/after/revoked.json")[.size] as? Int ?? 0
        let logBytes = try FileManager.default.attributesOfItem(atPath: dir + "/after/revoked.log")[.size] as? Int ?? 0
        let compaction = measure(3) { _ in try? store.save(after.takeRevokedChanges(), snapshot: after.revokedEntries()) }
        let revokesPerCompaction = Double(2 * snapshotBytes) / (Double(logBytes) / 2_000)

        print("""
            cost per revoke of durable state, 50,000 ids held (CPU µs / wall µs per revoke; release build recommended):
              core only (subtracted below)        \(coreCost)
              before: rewrite revoked.json        \(rewrite.minus(coreCost))
              after: append to revoked.log        \(append.minus(coreCost))
              after: compaction (once per \(Int(revokesPerCompaction)) revokes) \(compaction), amortised \(String(format: "%.1f", compaction.cpu / revokesPerCompaction)) µs CPU per revoke
            """)
        let reloaded = try store.load(strict: true, nowMillis: System.now().wallMillis, maxCount: 100_000, maxAgeMillis: config.revokedMaxAgeMillis)
        XCTAssertEqual(Set(reloaded.revoked.map(\.id)).count, 52_000, "every appended revoke was kept")
    }

    struct Cost: CustomStringConvertible {
        var cpu: Double
        var wall: Double
        func minus(_ other: Cost) -> Cost { Cost(cpu: cpu - other.cpu, wall: wall - other.wall) }
        var description: String { String(format: "%9.1f / %9.1f", cpu, wall) }
    }

    /// Mean CPU and wall microseconds of `rounds` calls.
    func measure(_ rounds: Int, _ body: (Int) -> Void) -> Cost {
        let cpu = System.cpuNanos()
        let wall = System.now().nanos
        for index in 0..<rounds { body(index) }
        return Cost(cpu: Double(System.cpuNanos() - cpu) / 1_000 / Double(rounds), wall: Double(System.now().nanos - wall) / 1_000 / Double(rounds))
    }
}
