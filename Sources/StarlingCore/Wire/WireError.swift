/// Why a datagram was refused. Every decoding failure maps to exactly one case, and each case
/// has a stable `reason` string that `stats` counts under (Protocol.md §5).
public enum WireError: Error, Equatable, Sendable {
    case oversized(length: Int)
    case truncated(field: String)
    case badMagic
    case unsupportedVersion(UInt8)
    case unknownType(UInt8)
    case badLength(field: String, length: Int)
    case invalidUTF8(field: String)
    case invalidValue(field: String)
    case trailingBytes(count: Int)
    case missingTag
    case unexpectedTag
    case truncatedTag
    case badTag

    /// The counter name this error is dropped under.
    public var reason: String {
        switch self {
        case .oversized: "oversized"
        case .truncated: "truncated"
        case .badMagic: "bad_magic"
        case .unsupportedVersion: "unsupported_version"
        case .unknownType: "unknown_type"
        case .badLength: "bad_length"
        case .invalidUTF8: "invalid_utf8"
        case .invalidValue: "invalid_value"
        case .trailingBytes: "trailing_bytes"
        case .missingTag: "missing_tag"
        case .unexpectedTag: "unexpected_tag"
        case .truncatedTag: "truncated_tag"
        case .badTag: "bad_tag"
        }
    }
}

/// Fixed limits of protocol version 2 (Protocol.md §2 and §3).
public enum Limits {
    public static let version: UInt8 = 2
    public static let magic: [UInt8] = Array("STRL".utf8)
    /// No datagram is sent or accepted above this size, so nothing fragments on a 1500-byte LAN.
    public static let maxDatagram = 1400
    /// Magic, version, type, flags, sequence, stamp, sender, incarnation, reply port, two lengths.
    public static let fixedHeader = 48
    public static let tagLength = 32
    public static let clusterBytes = 1...32
    public static let nameBytes = 1...64
    public static let topicBytes = 1...64
    public static let revokedIDBytes = 1...128
    public static let commandBytes = 1...32
    public static let targetBytes = 0...128
    public static let argBytes = 0...1024
    public static let maxArgs = 64
    /// The highest election term (2^63 − 1); larger terms are refused as `invalid_value`.
    public static let maxTerm: UInt64 = UInt64(Int64.max)
    public static let digestBuckets = 64
    /// Flag bit 0: an HMAC-SHA256 trailer follows the payload.
    public static let flagAuthenticated: UInt16 = 0x0001
    /// Flag bit 1: an extension area follows the payload (Protocol.md §3.4).
    public static let flagExtensions: UInt16 = 0x0002
    /// Bytes of one extension value.
    public static let extensionValueBytes = 0...255
}
