import StarlingCore

/// Display escaping for text that came from outside (names, ids, topics, bodies, command names,
/// error messages) before it reaches a log line, an event log or a table. A remote sender must
/// not be able to forge a log line (newline), move the cursor (ESC), reorder what is shown
/// (bidi controls) or hide bytes (NUL).
package enum Escape {
    /// `text` with every control character written as an escape, so it is one line of plain
    /// characters and the original can be read back from it:
    ///
    /// - `\` becomes `\\`;
    /// - C0 controls and DEL (U+0000–U+001F, U+007F) become `\xNN` (two lowercase hex digits);
    /// - C1 controls (U+0080–U+009F), the line and paragraph separators (U+2028, U+2029) and the
    ///   bidi controls (U+200E, U+200F, U+202A–U+202E, U+2066–U+2069) become `\u{N}`;
    /// - each byte of an invalid UTF-8 sequence (only possible from the byte form) becomes `\xNN`.
    ///
    /// Everything else, including all other non-ASCII text, is kept as is.
    package static func display<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> String {
        // Fast path: printable ASCII without a backslash, the common case for names and ids.
        if bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7F && $0 != 0x5C }) { return String(decoding: bytes, as: UTF8.self) }
        var out = ""
        var index = bytes.startIndex
        while index != bytes.endIndex {
            guard let (scalar, next) = decode(bytes, at: index) else {
                out += "\\x" + Hex.encode(CollectionOfOne(bytes[index]))
                index = bytes.index(after: index)
                continue
            }
            index = next
            switch scalar.value {
            case 0x5C: out += "\\\\"
            case 0x00...0x1F, 0x7F: out += "\\x" + Hex.encode(CollectionOfOne(UInt8(truncatingIfNeeded: scalar.value)))
            case 0x80...0x9F, 0x2028, 0x2029, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069:
                out += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// The same escaping for a string (its UTF-8 bytes).
    package static func display(_ text: some StringProtocol) -> String { display(text.utf8) }

    /// One well-formed UTF-8 scalar at `index` (no overlongs, surrogates or values past U+10FFFF),
    /// or nil when the bytes there are not one.
    private static func decode<Bytes: Collection<UInt8>>(_ bytes: Bytes, at index: Bytes.Index) -> (Unicode.Scalar, Bytes.Index)? {
        let lead = bytes[index]
        let length: Int
        let lowest: UInt32
        var value: UInt32
        switch lead {
        case 0x00...0x7F: return (Unicode.Scalar(lead), bytes.index(after: index))
        case 0xC2...0xDF: (length, lowest, value) = (2, 0x80, UInt32(lead & 0x1F))
        case 0xE0...0xEF: (length, lowest, value) = (3, 0x800, UInt32(lead & 0x0F))
        case 0xF0...0xF4: (length, lowest, value) = (4, 0x10000, UInt32(lead & 0x07))
        default: return nil
        }
        var cursor = bytes.index(after: index)
        for _ in 1..<length {
            guard cursor != bytes.endIndex, bytes[cursor] & 0xC0 == 0x80 else { return nil }
            value = value << 6 | UInt32(bytes[cursor] & 0x3F)
            cursor = bytes.index(after: cursor)
        }
        guard value >= lowest, let scalar = Unicode.Scalar(value) else { return nil }
        return (scalar, cursor)
    }
}
