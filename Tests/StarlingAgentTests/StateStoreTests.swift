import Foundation
@testable import Starling
import StarlingCore
import StarlingPOSIX
import StarlingTestSupport
import XCTest

/// Durable state files (Protocol.md §6.3.5), driven directly with an injected wall clock: no
/// sockets. Runs as root here, so "cannot write" is produced by the debug-only error injection in
/// Syscalls.swift (root ignores permission bits; a path under a regular file gives ENOTDIR).
final class StateStoreTests: XCTestCase {
    static let now: UInt64 = 1_800_000_000_000
    static let hour: UInt64 = 3_600_000
    var folders: [String] = []

    override func tearDown() {
        clearInjectedErrors()
        for folder in folders { try? FileManager.default.removeItem(atPath: folder) }
    }

    func folder() -> String {
        let path = NSTemporaryDirectory() + "starling-state-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        folders.append(path)
        return path
    }

    func write(_ text: String, _ path: String) throws {
        try text.write(toFile: path, atomically: false, encoding: .utf8)
    }

    func load(_ dir: String, strict: Bool = false, now: UInt64 = StateStoreTests.now) throws -> (StateStore, StateStore.Loaded) {
        let store = try StateStore(directory: dir)
        return (store, try store.load(strict: strict, nowMillis: now, maxCount: 50_000, maxAgeMillis: 3 * Self.hour))
    }

    func names(_ dir: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted() }

    func entry(_ id: String, _ at: UInt64 = StateStoreTests.now - 1_000) -> RevokedEntry { RevokedEntry(id: id, revokedAtMillis: at) }

    // MARK: issue 14 item 16: numbers out of range

    func testOutOfRangeNumbersSetTheFileAsideInsteadOfTrapping() throws {
        for number in ["1e30", "1e400", "-1e400", "18446744073709551616", "-1", "1.5", "1e-3"] {
            let dir = folder()
            try write("{\"version\":1,\"revoked\":[[\"a\",\(number)]]}", dir + "/revoked.json")
            XCTAssertThrowsError(try load(dir, strict: true), number) { error in
                guard case AgentError.corruptState = error else { return XCTFail("\(number): \(error)") }
            }
            let (_, loaded) = try load(dir)
            XCTAssertEqual(loaded.revoked, [], number)
            XCTAssertEqual(loaded.setAside.count, 1, number)
            XCTAssertTrue(loaded.setAside.first?.2.contains("not a time") == true, "\(number): \(loaded.setAside)")
            XCTAssertEqual(names(dir).filter { $0.hasPrefix("revoked.json.corrupt-") }.count, 1, "\(number): \(names(dir))")
        }
        // The same in a log line and in the clock file.
        let dir = folder()
        try write("[[\"a\",1e400]]\n[[\"b\",\(Self.now)]]\n", dir + "/revoked.log")
        try write("18446744073709551616\n", dir + "/clock")
        let (_, loaded) = try load(dir)
        XCTAssertEqual(loaded.revoked.map(\.id), ["b"], "the readable line is kept")
        XCTAssertEqual(loaded.clock, 0)
        XCTAssertEqual(Set(loaded.setAside.map { URL(fileURLWithPath: $0.0).lastPathComponent }), ["revoked.log", "clock"])
    }

    // MARK: issue 14 item 17: the directory is checked at start

    func testStateDirectoryMustBeAWritableDirectory() throws {
        XCTAssertThrowsError(try StateStore(directory: "")) { XCTAssertTrue("\($0)".contains("empty path"), "\($0)") }
        let base = folder()
        try write("x", base + "/plain")
        for bad in [base + "/plain", base + "/plain/sub", base + "/missing/sub"] {
            XCTAssertThrowsError(try load(bad), bad) { error in
                guard case AgentError.stateDirectory(let message) = error else { return XCTFail("\(bad): \(error)") }
                XCTAssertTrue(message.contains("cannot be used"), message)
            }
        }
        // Missing but creatable: created.
        let fresh = base + "/fresh"
        _ = try load(fresh)
        var isDirectory: ObjCBool = false
        XCTAssertTrue(FileManager.default.fileExists(atPath: fresh, isDirectory: &isDirectory) && isDirectory.boolValue)
        // Not writable: root ignores mode bits, so the probe's exclusive create is made to fail.
        let readOnly = folder()
        try inject("open \(System.directoryProbe(readOnly))", [EACCES])
        XCTAssertThrowsError(try load(readOnly)) { XCTAssertTrue("\($0)".contains("Permission denied"), "\($0)") }
    }

    func testStateFilesThatAreNotRegularFilesAreRefusedWithoutBlocking() throws {
        for name in ["revoked.json", "revoked.log", "clock"] {
            let dir = folder()
            try FileManager.default.createDirectory(atPath: "\(dir)/\(name)", withIntermediateDirectories: false)
            XCTAssertThrowsError(try load(dir), name) { XCTAssertTrue("\($0)".contains("is a directory"), "\($0)") }
            let fifoDir = folder()
            try run("/usr/bin/mkfifo", "\(fifoDir)/\(name)")
            XCTAssertThrowsError(try load(fifoDir), name) { XCTAssertTrue("\($0)".contains("FIFO"), "\($0)") }
        }
    }

    // MARK: issue 14 item 18: links and temporary files

    func testLinksAreNeverFollowedAndTemporaryFilesAreExclusive() throws {
        let dir = folder()
        let victim = folder() + "/victim"
        try write("precious", victim)
        // A planted link under every temporary name, and a state file that is a link.
        for name in ["revoked.json.tmp", "revoked.log.tmp", "clock.tmp"] {
            try FileManager.default.createSymbolicLink(atPath: "\(dir)/\(name)", withDestinationPath: victim)
        }
        let (store, _) = try load(dir)
        try store.start(snapshot: [entry("a")])
        // Planted again while running: the next save removes the link and writes its own file.
        try FileManager.default.createSymbolicLink(atPath: "\(dir)/revoked.json.tmp", withDestinationPath: victim)
        try FileManager.default.createSymbolicLink(atPath: "\(dir)/clock.tmp", withDestinationPath: victim)
        try store.save(RevokedChanges(entries: [], complete: true), snapshot: [entry("a"), entry("b")])
        try store.saveClock(42)
        XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), "precious")
        XCTAssertEqual(names(dir), ["clock", "revoked.json", "revoked.log"])
        for name in names(dir) {
            let attributes = try FileManager.default.attributesOfItem(atPath: "\(dir)/\(name)")
            XCTAssertEqual(attributes[.type] as? FileAttributeType, .typeRegular, name)
            XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o600, name)
        }
        // A state file that is a link is refused at start, and its target is left alone.
        try FileManager.default.removeItem(atPath: dir + "/revoked.json")
        try FileManager.default.createSymbolicLink(atPath: dir + "/revoked.json", withDestinationPath: victim)
        XCTAssertThrowsError(try load(dir)) { XCTAssertTrue("\($0)".contains("symbolic link"), "\($0)") }
        XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), "precious")
    }

    // MARK: issue 14 item 19: every loaded entry is checked as the wire checks it

    func testInvalidEntriesAreSkippedCountedAndCompactedAway() throws {
        let dir = folder()
        let long = String(repeating: "x", count: 129)
        let rows = [
            "[\"ok\",\(Self.now - 1_000)]", "[\"\(long)\",\(Self.now)]", "[\"\",\(Self.now)]",
            "[\"soon\",\(Self.now + 59_000)]", "[\"future\",\(Self.now + 61_000)]", "[\"far\",4611686018427387904]",
            "[\"old\",\(Self.now - 3 * Self.hour)]", "[\"max\",\(Self.now)]",
        ]
        try write("{\"version\":1,\"revoked\":[\(rows.joined(separator: ","))]}", dir + "/revoked.json")
        let (store, loaded) = try load(dir)
        XCTAssertEqual(loaded.revoked.map(\.id), ["ok", "soon", "future", "far", "max"])
        XCTAssertEqual(loaded.setAside.count, 0, "one bad entry does not set the whole file aside")
        XCTAssertEqual(loaded.notes, ["revoked ids on load: 2 skipped: an id not 1 to 128 bytes; 1 skipped: expired; "
            + "2 revoked more than 60 s in the future: time lowered to now + 60 s"])
        XCTAssertTrue(loaded.needsCompaction)
        // The set lowers the future times as it does for a peer's; the start fold writes that.
        var config = PeerConfig(name: "v", id: NodeID(high: 1, low: 1))
        config.revokedMaxAgeMillis = 3 * Self.hour
        var peer = Peer(config: config, revoked: loaded.revoked, nowMillis: Self.now)
        try store.start(snapshot: peer.revokedEntries())
        let (_, again) = try load(dir)
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: again.revoked.map { ($0.id, $0.revokedAtMillis) }),
            ["ok": Self.now - 1_000, "soon": Self.now + 59_000, "future": Self.now + 60_000, "far": Self.now + 60_000, "max": Self.now])
        XCTAssertEqual(again.notes, [], "the rewritten snapshot holds only valid entries")
        XCTAssertFalse(again.needsCompaction)
    }

    // MARK: issue 14 item 20: append-only log with compaction

    func testSavesAppendOnlyTheChangeAndReloadReplaysTheLog() throws {
        let dir = folder()
        let many = (0..<5_000).map { entry("id-\($0)") }
        try write("{\"version\":1,\"revoked\":\(StateStore.entriesJSON(many).serialized())}", dir + "/revoked.json")
        let (store, loaded) = try load(dir)
        XCTAssertEqual(loaded.revoked.count, 5_000, "the format of earlier versions is read as the snapshot")
        XCTAssertFalse(loaded.needsCompaction)
        try store.start(snapshot: nil)
        let snapshotSize = try size(dir + "/revoked.json")
        for index in 0..<3 {
            try store.save(RevokedChanges(entries: [entry("new-\(index)")], complete: true), snapshot: nil)
        }
        // What a save writes follows the change, not the set: three short lines, snapshot untouched.
        XCTAssertEqual(try size(dir + "/revoked.json"), snapshotSize)
        XCTAssertEqual(try String(contentsOfFile: dir + "/revoked.log", encoding: .utf8),
            (0..<3).map { "[[\"new-\($0)\",\(Self.now - 1_000)]]\n" }.joined())
        let (_, reloaded) = try load(dir)
        XCTAssertEqual(reloaded.revoked.count, 5_003)
        XCTAssertTrue(reloaded.needsCompaction, "a non-empty log is folded into a snapshot at start")
    }

    func testTornLastLineIsIgnoredAndABrokenLineSetsTheLogAside() throws {
        let dir = folder()
        try write("[[\"a\",\(Self.now)]]\n[[\"b\",\(Self.now)]", dir + "/revoked.log")
        var (_, loaded) = try load(dir)
        XCTAssertEqual(loaded.revoked.map(\.id), ["a"])
        XCTAssertEqual(loaded.setAside.count, 0)
        XCTAssertEqual(loaded.notes.count, 1)
        XCTAssertTrue(loaded.notes[0].contains("cut short"), loaded.notes[0])
        try write("[[\"a\",\(Self.now)]]\ngarbage\n[[\"c\",\(Self.now)]]\n", dir + "/revoked.log")
        XCTAssertThrowsError(try load(dir, strict: true))
        (_, loaded) = try load(dir)
        XCTAssertEqual(loaded.revoked.map(\.id), ["a", "c"], "the readable lines are kept")
        XCTAssertEqual(loaded.setAside.first?.2, "1 unreadable line(s) (the 2 others were loaded)")
    }

    func testCompactionFoldsTheLogAndAFailedWriteForcesASnapshot() throws {
        let dir = folder()
        let (store, _) = try load(dir)
        try store.start(snapshot: nil)
        var held: [RevokedEntry] = []
        while !store.wantsSnapshot {
            // Twenty ids per save, as a busy agent batches them: fewer fsyncs for the test.
            let batch = (0..<20).map { entry("\(held.count + $0)-" + String(repeating: "z", count: 120)) }
            held += batch
            try store.save(RevokedChanges(entries: batch, complete: true), snapshot: nil)
        }
        XCTAssertGreaterThan(try size(dir + "/revoked.log"), StateStore.minimumCompactionBytes)
        try store.save(RevokedChanges(entries: [], complete: true), snapshot: held)
        XCTAssertFalse(store.wantsSnapshot)
        XCTAssertEqual(try size(dir + "/revoked.log"), 0)
        // A failed append (disk full) is never retried as an append: the next save is a snapshot.
        try inject("fsync", [ENOSPC])
        XCTAssertThrowsError(try store.save(RevokedChanges(entries: [entry("lost-append")], complete: true), snapshot: nil))
        XCTAssertTrue(store.wantsSnapshot)
        // Without the snapshot it asks for, the next save is refused, never appended after a
        // possibly partial line; with it, everything held is kept.
        XCTAssertThrowsError(try store.save(RevokedChanges(entries: [entry("next")], complete: true), snapshot: nil))
        try store.save(RevokedChanges(entries: [], complete: true), snapshot: held + [entry("lost-append"), entry("next")])
        let (_, loaded) = try load(dir)
        XCTAssertEqual(loaded.revoked.count, held.count + 2)
        XCTAssertEqual(loaded.setAside.count, 0, "no torn line survives the snapshot")
    }

    func testJournalReportsChangesAndOverflowsToAFullSave() {
        var config = PeerConfig(name: "j", id: NodeID(high: 1, low: 2))
        config.revokedMaxCount = 10
        var peer = Peer(config: config, revoked: [entry("loaded")], nowMillis: Self.now)
        let now = Now(nanos: 1, wallMillis: Self.now)
        _ = peer.revoke(["before-journal"], now: now)
        peer.startRevokedJournal()
        _ = peer.revoke(["a", "b"], now: now)
        XCTAssertEqual(peer.takeRevokedChanges(), RevokedChanges(entries: [entry("a", Self.now), entry("b", Self.now)], complete: true))
        XCTAssertEqual(peer.takeRevokedChanges(), RevokedChanges(entries: [], complete: true))
        _ = peer.revoke((0..<11).map { "many-\($0)" }, now: now)
        XCTAssertEqual(peer.takeRevokedChanges(), RevokedChanges(entries: [], complete: false), "past the bound: save everything")
    }

    // MARK: helpers


    func size(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? -1
    }

    func run(_ tool: String, _ args: String...) throws {
        let finished = try ChildProcess.run(tool, args)
        XCTAssertEqual(finished.code, 0, "\(tool) \(args): \(finished.stderr)")
    }
}

/// Makes the named system call (as Syscalls.swift names it) fail with `codes`, one per call.
/// The hook exists only in debug builds.
func inject(_ call: String, _ codes: [Int32]) throws {
    #if DEBUG
    SyscallFaults.clear()
    SyscallFaults.inject(call, codes)
    #else
    throw XCTSkip("error injection exists only in debug builds")
    #endif
}

func clearInjectedErrors() {
    #if DEBUG
    SyscallFaults.clear()
    #endif
}
