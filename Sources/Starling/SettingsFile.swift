import StarlingCore
import StarlingPOSIX

/// A settings file for `starling agent --config FILE`: one `name = value` per line, the names
/// being the agent's flags without their dashes (`interface = eth0`, `key-file = /etc/starling/
/// cluster.key`, `log-level = info`, `seed = 10.0.0.2:5354` once per seed, `no-multicast = true`).
/// `#` starts a comment; blank lines are skipped. Flags on the command line win. On reload the
/// agent takes `log-level` and `key-file` from it again.
public enum SettingsFile {
    /// Far more than any settings file; a larger one is refused, not read.
    static let maxBytes = 64 * 1024

    /// The settings in file order; an unreadable file or a malformed line is an error naming it.
    public static func load(_ path: String) throws(AgentError) -> [(name: String, value: String)] {
        let file: RegularFile
        do { file = try System.readRegularFile(path, followLinks: true, maxBytes: maxBytes) } catch {
            throw .invalidConfiguration(field: "settingsFile", reason: "cannot read \(Escape.display(path)): \(error)")
        }
        return try parse(file.bytes, path: path)
    }

    /// Parses bytes (LF or CRLF lines, UTF-8; control characters other than tab are refused).
    public static func parse(_ bytes: [UInt8], path: String = "settings file") throws(AgentError) -> [(name: String, value: String)] {
        var settings: [(name: String, value: String)] = []
        // A byte order mark, as some editors write, is not part of the first line.
        let bytes = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? Array(bytes.dropFirst(3)) : bytes
        for (index, rawLine) in bytes.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.last == 0x0D ? rawLine.dropLast() : rawLine
            func fail(_ reason: String) -> AgentError {
                .invalidConfiguration(field: "settingsFile", reason: "\(Escape.display(path)) line \(index + 1): \(reason)")
            }
            guard let text = String(validating: line, as: UTF8.self) else { throw fail("not UTF-8") }
            guard !text.unicodeScalars.contains(where: { ($0.value < 0x20 && $0 != "\t") || (0x7F...0x9F).contains($0.value) }) else {
                throw fail("holds a control character")
            }
            let content = text.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let trimmed = content.trimmingSpaces
            if trimmed.isEmpty { continue }
            guard let equals = trimmed.firstIndex(of: "=") else { throw fail("expected name = value") }
            let name = trimmed[..<equals].trimmingSpaces
            let value = trimmed[trimmed.index(after: equals)...].trimmingSpaces
            guard !name.isEmpty, name.utf8.allSatisfy({ (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2D }) else {
                throw fail("a setting's name is lowercase letters, digits and dashes")
            }
            settings.append((String(name), String(value)))
        }
        return settings
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs.
    fileprivate var trimmingSpaces: Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return Substring(self[first...last])
    }
}
