/// Lowercase hex of bytes and of 64-bit values, and back: the one hex codec. Decoding reads
/// hostile text (key files, flags, test vectors) and never traps: an odd length, a byte that is
/// not a hex digit, or text that is not ASCII is a typed error.
public enum Hex {
    /// Why text is not hex.
    public enum DecodeError: Error, Equatable, Sendable, CustomStringConvertible {
        /// An odd number of digits (in UTF-8 bytes).
        case oddLength(Int)
        /// The byte at this offset (of the UTF-8 form) is not a hex digit.
        case notHex(offset: Int)

        public var description: String {
            switch self {
            case .oddLength(let count): "\(count) hex digits (an odd number)"
            case .notHex(let offset): "not a hex digit at offset \(offset)"
            }
        }
    }

    private static let digits = Array("0123456789abcdef".utf8)

    /// Two lowercase digits a byte.
    public static func encode<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes { append(byte, to: &out) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Exactly 16 lowercase digits, leading zeros kept (a JSON number cannot carry 64 bits
    /// exactly; a node id is two of these).
    public static func encode(_ value: UInt64) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(16)
        for shift in stride(from: 56, through: 0, by: -8) { append(UInt8(truncatingIfNeeded: value >> UInt64(shift)), to: &out) }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes `digits` (UTF-8, either case) stand for.
    public static func decode<Digits: Collection<UInt8>>(utf8 digits: Digits) throws(DecodeError) -> [UInt8] {
        guard digits.count % 2 == 0 else { throw .oddLength(digits.count) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var high: UInt8?
        for (offset, digit) in digits.enumerated() {
            guard let value = nibble(digit) else { throw .notHex(offset: offset) }
            if let first = high {
                bytes.append(first << 4 | value)
                high = nil
            } else {
                high = value
            }
        }
        return bytes
    }

    /// The bytes `text` stands for; nil when it is not hex.
    public static func decode(_ text: String) -> [UInt8]? { try? decode(utf8: text.utf8) }

    /// The 64-bit value of exactly 16 digits (big-endian); nil for anything else.
    public static func decodeUInt64<Digits: Collection<UInt8>>(utf8 digits: Digits) -> UInt64? {
        guard digits.count == 16, let bytes = try? decode(utf8: digits) else { return nil }
        return bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }

    private static func append(_ byte: UInt8, to out: inout [UInt8]) {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0x0F)])
    }

    private static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
