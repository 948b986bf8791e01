import StarlingCore
import StarlingPOSIX
import Synchronization

/// Durable state (`--state-dir`, Protocol.md §6.3.5): the revoked set as a snapshot
/// (`revoked.json`) plus an append-only log of later changes (`revoked.log`, one line per save),
/// and the clock (`clock`). A save appends the changes and fsyncs, so its cost follows the
/// change, not the set; the log is folded into a new snapshot once it outgrows it.
///
/// Nothing in the directory is trusted: files are read without following links and without
/// blocking, every entry is checked as the wire checks it, and a file that cannot be read is
/// moved aside (or, with `strict`, refused), never overwritten. Safe to call from any thread.
final class StateStore: Sendable {
    static let snapshotName = "revoked.json"
    static let logName = "revoked.log"
    static let clockName = "clock"
    /// The log is folded into the snapshot when it is larger than twice the snapshot, and at
    /// least this large (so a small set is not rewritten every few revokes).
    static let minimumCompactionBytes = 256 * 1024

    let directory: String
    private let files = Mutex(Files())
    /// ``wantsSnapshot``, published after every write so that the agent can read it under its
    /// loop lock without waiting for a write in progress.
    private let snapshotWanted = Atomic<Bool>(true)

    private struct Files: Sendable {
        var log: Int32 = -1
        var logBytes = 0
        var snapshotBytes = 0
        /// A write failed (or was never made): the next save writes a whole snapshot, which also
        /// replaces a log that may end in a partial line.
        var needsSnapshot = true
    }

    var snapshotPath: String { directory + "/" + Self.snapshotName }
    var logPath: String { directory + "/" + Self.logName }
    var clockPath: String { directory + "/" + Self.clockName }

    /// Refuses an empty path: it would put the state files at the root (`/clock`).
    init(directory: String) throws(AgentError) {
        guard !directory.isEmpty else { throw .stateDirectory("the state directory is an empty path") }
        self.directory = directory
    }

    deinit {
        let fd = files.withLock { $0.log }
        if fd >= 0 { System.close(fd) }
    }

    // MARK: Loading

    struct Loaded: Sendable {
        var clock: UInt64 = 0
        var revoked: [RevokedEntry] = []
        /// Files that were unreadable and moved aside: (original, moved to, reason).
        var setAside: [(String, String, String)] = []
        /// What was skipped, for the log (entries refused, a last line cut by a crash).
        var notes: [String] = []
        /// The files on disk differ from what was loaded: write a fresh snapshot at start.
        var needsCompaction = false
    }

    /// Checks the directory (creatable, a directory, writable) and loads the snapshot, the log and
    /// the clock. A state file that is not a regular file (a link, a directory, a FIFO) is a start
    /// error; a file whose content is broken is set aside, or with `strict` refused.
    func load(strict: Bool, nowMillis: UInt64, maxCount: Int, maxAgeMillis: UInt64) throws(AgentError) -> Loaded {
        do { try System.prepareDirectory(directory) } catch {
            throw .stateDirectory("state directory \(directory) cannot be used: \(error)")
        }
        for name in [Self.snapshotName, Self.logName, Self.clockName] {
            // Leftovers of a crash mid-write; a link planted under such a name goes, its target stays.
            do { try System.removeFile("\(directory)/\(name).tmp") } catch {
                throw .stateDirectory("cannot remove leftover \(directory)/\(name).tmp: \(error)")
            }
        }
        var loaded = Loaded()
        // The longest id escaped takes under 1 KiB and the log may reach twice the snapshot: a file
        // above 2 KiB per entry (plus room for a small set) is not one this agent wrote.
        let limit = 4 << 20 + min(maxCount, Int.max / 4096) * 2048
        if let bytes = try read(clockPath, limit: 4096, strict: strict, nowMillis: nowMillis, into: &loaded) {
            if let value = Self.parseClock(bytes) {
                loaded.clock = value
            } else {
                try setAside(clockPath, reason: "not a number", strict: strict, nowMillis: nowMillis, into: &loaded)
            }
        }
        var validator = EntryValidator(nowMillis: nowMillis, maxAgeMillis: maxAgeMillis)
        if let bytes = try read(snapshotPath, limit: limit, strict: strict, nowMillis: nowMillis, into: &loaded) {
            do {
                loaded.revoked = try Self.parseSnapshot(bytes).filter { validator.accept($0) }
                files.withLock { $0.snapshotBytes = bytes.count }
            } catch {
                try setAside(snapshotPath, reason: error.description, strict: strict, nowMillis: nowMillis, into: &loaded)
            }
        }
        if let bytes = try read(logPath, limit: limit, strict: strict, nowMillis: nowMillis, into: &loaded) {
            let log = Self.parseLog(bytes)
            loaded.revoked += log.entries.filter { validator.accept($0) }
            if log.tornTail { loaded.notes.append("\(logPath): last line cut short (a write interrupted by a crash, never acknowledged); ignored") }
            if log.badLines > 0 {
                try setAside(logPath, reason: "\(log.badLines) unreadable line(s) (the \(log.lines) others were loaded)", strict: strict,
                    nowMillis: nowMillis, into: &loaded)
            }
            if !bytes.isEmpty { loaded.needsCompaction = true }
        }
        if let note = validator.note { loaded.notes.append(note) }
        if validator.skipped > 0 || validator.future > 0 || !loaded.setAside.isEmpty { loaded.needsCompaction = true }
        return loaded
    }

    /// The file's bytes; nil when it does not exist.
    private func read(_ path: String, limit: Int, strict: Bool, nowMillis: UInt64, into loaded: inout Loaded) throws(AgentError) -> [UInt8]? {
        do {
            return try System.readRegularFile(path, followLinks: false, maxBytes: limit).bytes
        } catch {
            switch error {
            case _ where error.isMissing: return nil
            case .symbolicLink, .notRegular:
                throw .stateDirectory("state file \(path) \(error); move it away (state files are regular files this agent writes)")
            case .tooLarge:
                try setAside(path, reason: error.description, strict: strict, nowMillis: nowMillis, into: &loaded)
                return nil
            case .system:
                throw .stateDirectory("cannot read state file \(path): \(error)")
            }
        }
    }

    private func setAside(_ path: String, reason: String, strict: Bool, nowMillis: UInt64, into loaded: inout Loaded) throws(AgentError) {
        if strict { throw .corruptState(path: path, reason: reason) }
        let aside = "\(path).corrupt-\(nowMillis)"
        // Moved, never overwritten: if it cannot be moved, the agent cannot start without losing it.
        do { try System.rename(path, aside) } catch { throw .stateDirectory("cannot set aside unreadable \(path) (\(reason)): \(error)") }
        loaded.setAside.append((path, aside, reason))
    }

    // MARK: Saving

    /// Starts the log after loading: a fresh snapshot of `entries` when given (the files on disk
    /// differ from the set), then an empty log, kept open for appending.
    func start(snapshot entries: [RevokedEntry]?) throws(Errno) {
        try files.withLock { (files: inout Files) throws(Errno) in
            defer { publish(files) }
            if let entries {
                try writeSnapshot(entries, &files)
            } else {
                try openEmptyLog(&files)
                files.needsSnapshot = false
            }
        }
    }

    /// Keeps `changes`: one appended line, fsynced — or, when given, the whole set as a new
    /// snapshot (which holds the changes too). The caller passes a snapshot when the changes are
    /// incomplete or ``wantsSnapshot``; without one, a save that needs it fails (and is retried
    /// with one), because after a failed append the log may end in a partial line.
    func save(_ changes: RevokedChanges, snapshot: [RevokedEntry]?) throws(Errno) {
        try files.withLock { (files: inout Files) throws(Errno) in
            defer { publish(files) }
            if let snapshot {
                try writeSnapshot(snapshot, &files)
            } else if files.needsSnapshot || !changes.complete || files.log < 0 {
                throw Errno(Errno.ioError.rawValue, "\(logPath): not appended after an earlier failed write (a snapshot is due)")
            } else if !changes.entries.isEmpty {
                let line = Array((Self.entriesJSON(changes.entries).serialized() + "\n").utf8)
                do throws(Errno) {
                    try System.appendDurably(files.log, line)
                } catch {
                    files.needsSnapshot = true
                    throw error
                }
                files.logBytes += line.count
            }
        }
    }

    /// True when the next save should write a snapshot: an earlier write failed, or the log has
    /// outgrown the snapshot (compaction).
    var wantsSnapshot: Bool { snapshotWanted.load(ordering: .acquiring) }

    private func publish(_ files: Files) {
        snapshotWanted.store(files.needsSnapshot || files.logBytes > max(Self.minimumCompactionBytes, 2 * files.snapshotBytes),
            ordering: .releasing)
    }

    /// Snapshot first, then an empty log: a crash between the two replays a log whose entries the
    /// snapshot already holds, which changes nothing (merging keeps the later time).
    private func writeSnapshot(_ entries: [RevokedEntry], _ files: inout Files) throws(Errno) {
        files.needsSnapshot = true
        let document = JSON.object([("version", .int(1)), ("revoked", Self.entriesJSON(entries))])
        let bytes = Array(document.serialized().utf8)
        try System.replaceFile(snapshotPath, bytes)
        files.snapshotBytes = bytes.count
        try openEmptyLog(&files)
        files.needsSnapshot = false
    }

    private func openEmptyLog(_ files: inout Files) throws(Errno) {
        let fd = try System.replaceFileKeepingOpen(logPath, [])
        if files.log >= 0 { System.close(files.log) }
        files.log = fd
        files.logBytes = 0
    }

    func saveClock(_ clock: UInt64) throws(Errno) {
        try System.replaceFile(clockPath, Array("\(clock)\n".utf8))
    }

    // MARK: Formats

    struct FormatError: Error, CustomStringConvertible {
        let description: String
    }

    static func entriesJSON(_ entries: [RevokedEntry]) -> JSON {
        .array(entries.map { .array([.string($0.id), .int($0.revokedAtMillis)]) })
    }

    /// ASCII digits, surrounded by white space at most; nil for anything else or above 2^64 − 1.
    static func parseClock(_ bytes: [UInt8]) -> UInt64? {
        let isSpace: (UInt8) -> Bool = { [0x20, 0x09, 0x0A, 0x0D].contains($0) }
        let digits = bytes.drop(while: isSpace).reversed().drop(while: isSpace).reversed()
        guard !digits.isEmpty, digits.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        return UInt64(String(decoding: digits, as: UTF8.self))
    }

    /// `{"version":1,"revoked":[[id, ms], …]}` — the format every version has written.
    static func parseSnapshot(_ bytes: [UInt8]) throws(FormatError) -> [RevokedEntry] {
        let document = try parseJSON(bytes[...])
        guard document["version"]?.numberValue == 1, let items = document["revoked"]?.arrayValue else {
            throw FormatError(description: "missing version 1 or revoked list")
        }
        return try entries(items)
    }

    /// The log's lines, each `[[id, ms], …]`. A last line without its newline was cut by a crash
    /// (it was never fsynced, so never acknowledged); any other line that does not parse is bad.
    static func parseLog(_ bytes: [UInt8]) -> (entries: [RevokedEntry], lines: Int, badLines: Int, tornTail: Bool) {
        var result: (entries: [RevokedEntry], lines: Int, badLines: Int, tornTail: Bool) = ([], 0, 0, false)
        var start = 0
        while start < bytes.count {
            guard let end = bytes[start...].firstIndex(of: 0x0A) else {
                result.tornTail = true
                break
            }
            do {
                guard let items = try parseJSON(bytes[start..<end]).arrayValue else { throw FormatError(description: "not a list") }
                result.entries += try entries(items)
                result.lines += 1
            } catch {
                result.badLines += 1
            }
            start = end + 1
        }
        return result
    }

    private static func parseJSON(_ bytes: ArraySlice<UInt8>) throws(FormatError) -> JSON {
        guard let text = String(validating: bytes, as: UTF8.self) else { throw FormatError(description: "not UTF-8") }
        do { return try JSON.parse(text) } catch { throw FormatError(description: "bad JSON at byte \(error.offset): \(error.message)") }
    }

    /// Each item a pair of a string and a whole number of milliseconds in 0…2^64 − 1. A time no
    /// writer produces (negative, fractional, 1e30, 1e400) marks the file as damaged.
    private static func entries(_ items: [JSON]) throws(FormatError) -> [RevokedEntry] {
        var out: [RevokedEntry] = []
        out.reserveCapacity(items.count)
        for item in items {
            guard let pair = item.arrayValue, pair.count == 2, let id = pair[0].stringValue, let number = pair[1].numberValue else {
                throw FormatError(description: "an entry is not [id, revoked_at_ms]")
            }
            guard let at = UInt64(exactly: number) else { throw FormatError(description: "revoked_at_ms \(number) is not a time in milliseconds") }
            out.append(RevokedEntry(id: id, revokedAtMillis: at))
        }
        return out
    }
}

/// The checks the wire applies to a revoked entry, applied to what is loaded from disk: an id of
/// 1–128 bytes, not expired — skipped and counted, the rest of the file kept — and a revoke time
/// at most ``RevokedSet/maxFutureSkewMillis`` ahead of the wall clock: a later one is counted,
/// and lowered to that by the set when the entry is merged, as from a peer.
struct EntryValidator {
    let nowMillis: UInt64
    let maxAgeMillis: UInt64
    private(set) var badLength = 0
    private(set) var future = 0
    private(set) var expired = 0

    init(nowMillis: UInt64, maxAgeMillis: UInt64) {
        self.nowMillis = nowMillis
        self.maxAgeMillis = maxAgeMillis
    }

    var skipped: Int { badLength + expired }

    mutating func accept(_ entry: RevokedEntry) -> Bool {
        guard Limits.revokedIDBytes.contains(entry.id.utf8.count) else {
            badLength += 1
            return false
        }
        let (expiry, past) = entry.revokedAtMillis.addingReportingOverflow(maxAgeMillis)
        guard past || expiry > nowMillis else {
            expired += 1
            return false
        }
        let (latest, over) = nowMillis.addingReportingOverflow(RevokedSet.maxFutureSkewMillis)
        if !over, entry.revokedAtMillis > latest { future += 1 }
        return true
    }

    /// One line for the log when anything was skipped or lowered.
    var note: String? {
        var parts: [String] = []
        if badLength > 0 { parts.append("\(badLength) skipped: an id not 1 to 128 bytes") }
        if expired > 0 { parts.append("\(expired) skipped: expired") }
        if future > 0 { parts.append("\(future) revoked more than \(RevokedSet.maxFutureSkewMillis / 1000) s in the future: time lowered to now + \(RevokedSet.maxFutureSkewMillis / 1000) s") }
        return parts.isEmpty ? nil : "revoked ids on load: " + parts.joined(separator: "; ")
    }
}
