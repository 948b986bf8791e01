import StarlingCore
import StarlingPOSIX

/// Durable state (`--state-dir`): the revoked set in `revoked.json`, the clock in `clock`.
/// Both are replaced atomically. A file that cannot be read is moved aside, never overwritten.
struct StateStore: Sendable {
    let directory: String
    var revokedPath: String { directory + "/revoked.json" }
    var clockPath: String { directory + "/clock" }

    struct Loaded: Sendable {
        var clock: UInt64 = 0
        var revoked: [RevokedEntry] = []
        /// Files that were unreadable and moved aside: (original, moved to, reason).
        var setAside: [(String, String, String)] = []
    }

    /// Loads what is there. With `strict`, an unreadable file is an error instead of set aside.
    func load(strict: Bool, wallMillis: UInt64) throws(AgentError) -> Loaded {
        try? System.makeDirectory(directory)
        var loaded = Loaded()
        if let bytes = try? System.readFile(clockPath) {
            let text = String(decoding: bytes, as: UTF8.self).trimmingWhitespace
            if let value = UInt64(text) {
                loaded.clock = value
            } else {
                try setAside(clockPath, reason: "not a number", strict: strict, wallMillis: wallMillis, into: &loaded)
            }
        }
        if let bytes = try? System.readFile(revokedPath) {
            do {
                loaded.revoked = try Self.parseRevoked(bytes)
            } catch {
                try setAside(revokedPath, reason: error.description, strict: strict, wallMillis: wallMillis, into: &loaded)
            }
        }
        return loaded
    }

    private func setAside(_ path: String, reason: String, strict: Bool, wallMillis: UInt64, into loaded: inout Loaded) throws(AgentError) {
        if strict { throw .corruptState(path: path, reason: reason) }
        let aside = "\(path).corrupt-\(wallMillis)"
        try? System.rename(path, aside)
        loaded.setAside.append((path, aside, reason))
    }

    struct FormatError: Error, CustomStringConvertible {
        let description: String
    }

    static func parseRevoked(_ bytes: [UInt8]) throws(FormatError) -> [RevokedEntry] {
        guard let text = String(validating: bytes, as: UTF8.self) else { throw FormatError(description: "not UTF-8") }
        let document: JSON
        do { document = try JSON.parse(text) } catch { throw FormatError(description: "bad JSON at byte \(error.offset): \(error.message)") }
        guard document["version"]?.numberValue == 1, let items = document["revoked"]?.arrayValue else {
            throw FormatError(description: "missing version 1 or revoked list")
        }
        var entries: [RevokedEntry] = []
        entries.reserveCapacity(items.count)
        for item in items {
            guard let pair = item.arrayValue, pair.count == 2, let id = pair[0].stringValue, let at = pair[1].numberValue,
                at >= 0
            else { throw FormatError(description: "bad entry") }
            entries.append(RevokedEntry(id: id, revokedAtMillis: UInt64(at)))
        }
        return entries
    }

    func saveRevoked(_ entries: [RevokedEntry]) throws(Errno) {
        let document = JSON.object([("version", .int(1)),
            ("revoked", .array(entries.map { .array([.string($0.id), .int($0.revokedAtMillis)]) }))])
        try System.writeAtomically(revokedPath, Array(document.serialized().utf8))
    }

    func saveClock(_ clock: UInt64) throws(Errno) {
        try System.writeAtomically(clockPath, Array("\(clock)\n".utf8))
    }
}

extension String {
    var trimmingWhitespace: String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
