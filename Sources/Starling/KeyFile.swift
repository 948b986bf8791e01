import StarlingCore
import StarlingPOSIX

/// Cluster keys (Protocol.md §7.1): one per line, 64 hex digits, `#` comments. The first key
/// signs; all verify.
public enum KeyFile {
    /// Far more than any list of keys in rotation; a larger file is refused, not read.
    static let maxBytes = 64 * 1024

    /// A fresh 256-bit key in its text form.
    public static func generate() throws(Errno) -> String {
        Hex.encode(try System.randomBytes(32))
    }

    /// Loads keys, refusing a file that group or others may read, and anything but a regular
    /// file: a FIFO or a device is refused without blocking. Links are followed (mounted secrets
    /// are usually links); the permission check applies to the file read.
    public static func load(_ path: String) throws(AgentError) -> [AuthKey] {
        guard !path.isEmpty else { throw .keyFile("the key file is an empty path") }
        let file: RegularFile
        do { file = try System.readRegularFile(path, followLinks: true, maxBytes: maxBytes) } catch {
            throw .keyFile("cannot read key file \(path): \(error)")
        }
        guard file.mode & 0o077 == 0 else {
            throw .keyFile("key file \(path) is readable by others (mode \(String(file.mode, radix: 8))); run: chmod 600 \(path)")
        }
        return try parse(file.bytes, path: path)
    }

    /// Keys from a key file's text; `path` names it in errors.
    public static func parse(_ text: String, path: String = "key file") throws(AgentError) -> [AuthKey] {
        try parse(Array(text.utf8), path: path)
    }

    /// Works on bytes: in a Swift String "\r\n" is one character, so splitting text on "\n" would
    /// not split CRLF lines at all. LF and CRLF endings are both accepted.
    public static func parse(_ bytes: [UInt8], path: String = "key file") throws(AgentError) -> [AuthKey] {
        var keys: [AuthKey] = []
        // A byte order mark, as some editors write with CRLF, is not part of the first key.
        let bytes = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? bytes.dropFirst(3) : bytes[...]
        for (number, rawLine) in bytes.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
            var line = rawLine
            if line.last == 0x0D { line = line.dropLast() }
            if let hash = line.firstIndex(of: UInt8(ascii: "#")) { line = line[..<hash] }
            let isBlank: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 }
            line = line.drop(while: isBlank)
            while let last = line.last, isBlank(last) { line = line.dropLast() }
            if line.isEmpty { continue }
            guard line.count == 64 else { throw .keyFile("\(path):\(number + 1): a key is 64 hex digits") }
            guard let key = try? Hex.decode(utf8: line) else { throw .keyFile("\(path):\(number + 1): not hex") }
            keys.append(AuthKey(key))
        }
        guard !keys.isEmpty else { throw .keyFile("\(path) holds no key") }
        return keys
    }
}
