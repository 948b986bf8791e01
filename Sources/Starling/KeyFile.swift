import StarlingCore
import StarlingPOSIX

/// Cluster keys (Protocol.md §7.1): one per line, 64 hex digits, `#` comments. The first key
/// signs; all verify.
public enum KeyFile {
    /// A fresh 256-bit key in its text form.
    public static func generate() throws(Errno) -> String {
        try System.randomBytes(32).map { byte in
            let digits = String(byte, radix: 16)
            return digits.count == 1 ? "0" + digits : digits
        }.joined()
    }

    /// Loads keys, refusing a file that group or others may read.
    public static func load(_ path: String) throws(AgentError) -> [AuthKey] {
        let mode: UInt32
        do { mode = try System.fileMode(path) } catch { throw .keyFile("cannot read key file \(path): \(error)") }
        guard mode & 0o077 == 0 else {
            throw .keyFile("key file \(path) is readable by others (mode \(String(mode, radix: 8))); run: chmod 600 \(path)")
        }
        let bytes: [UInt8]
        do { bytes = try System.readFile(path) } catch { throw .keyFile("cannot read key file \(path): \(error)") }
        return try parse(String(decoding: bytes, as: UTF8.self), path: path)
    }

    public static func parse(_ text: String, path: String = "key file") throws(AgentError) -> [AuthKey] {
        var keys: [AuthKey] = []
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = String(rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? "").trimmingWhitespace
            if line.isEmpty { continue }
            guard line.utf8.count == 64 else { throw .keyFile("\(path):\(number + 1): a key is 64 hex digits") }
            var bytes: [UInt8] = []
            var index = line.startIndex
            while index < line.endIndex {
                let next = line.index(index, offsetBy: 2)
                guard let byte = UInt8(line[index..<next], radix: 16) else { throw .keyFile("\(path):\(number + 1): not hex") }
                bytes.append(byte)
                index = next
            }
            keys.append(AuthKey(bytes))
        }
        guard !keys.isEmpty else { throw .keyFile("\(path) holds no key") }
        return keys
    }
}
