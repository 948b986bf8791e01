/// A member's tags (issue 18, Protocol.md §3.4.1): `key=value` pairs an agent says about itself
/// (`role=web`, `zone=a`), spread with its membership and selected on by control targets.
///
/// Keys are unique and kept in UTF-8 byte order; keys and values compare as bytes, never as
/// Unicode-canonical strings. The whole set encodes to at most ``Limits/tagsBytes``.
public struct MemberTags: Sendable, Hashable, CustomStringConvertible {
    /// One tag. Equal and hashed by bytes.
    public struct Pair: Sendable, Hashable {
        public let key: String
        public let value: String

        public static func == (a: Pair, b: Pair) -> Bool { bytesEqual(a.key, b.key) && bytesEqual(a.value, b.value) }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(ByteString(key))
            hasher.combine(ByteString(value))
        }
    }

    /// The tags in UTF-8 byte order of key.
    public private(set) var pairs: [Pair]

    public static let empty = MemberTags(sorted: [])

    init(sorted pairs: [Pair]) { self.pairs = pairs }

    /// Tags from keys and values; throws when one is outside §3.4.1 or the set is too large.
    public init(_ tags: [String: String]) throws(MemberTagsError) {
        // Checked in key order (as bytes), not the dictionary's: of two bad keys, the same one is named in every process.
        try self.init(pairs: tags.map { ($0.key, $0.value) }.sorted { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) })
    }

    /// Tags from `key=value` texts (the `--tag` flag); the first `=` ends the key.
    public init(parsing texts: [String]) throws(MemberTagsError) {
        var pairs: [(String, String)] = []
        for text in texts {
            guard let equals = text.utf8.firstIndex(of: UInt8(ascii: "=")) else { throw .notKeyValue(text) }
            pairs.append((String(text[..<equals]), String(text[text.index(after: equals)...])))
        }
        try self.init(pairs: pairs)
    }

    /// Tags from (key, value) pairs in any order; keys that differ only as bytes (a precomposed
    /// and a decomposed "é") are different keys here, which a `[String: String]` cannot hold.
    public init(pairs list: [(String, String)]) throws(MemberTagsError) {
        var pairs: [Pair] = []
        for (key, value) in list {
            guard Self.isValidKey(key) else { throw .invalidKey(key) }
            guard Self.isValidValue(value) else { throw .invalidValue(key: key) }
            pairs.append(Pair(key: key, value: value))
        }
        pairs.sort { bytesPrecede($0.key, $1.key) }
        for index in pairs.indices.dropFirst() where bytesEqual(pairs[index - 1].key, pairs[index].key) {
            throw .duplicateKey(pairs[index].key)
        }
        self.init(sorted: pairs)
        guard encodedSize <= Limits.tagsBytes else { throw .tooLarge(bytes: encodedSize) }
    }

    public var isEmpty: Bool { pairs.isEmpty }

    /// The value of `key`, compared as bytes.
    public subscript(key: String) -> String? {
        pairs.first { bytesEqual($0.key, key) }?.value
    }

    /// Bytes of the pairs on the wire: a length byte and the bytes of each key and value.
    public var encodedSize: Int { pairs.reduce(0) { $0 + 2 + $1.key.utf8.count + $1.value.utf8.count } }

    /// `key=value` pairs joined by commas, in key order.
    public var description: String { pairs.map { "\($0.key)=\($0.value)" }.joined(separator: ",") }

    /// The tags as a JSON object, in key order (`members`, `stats`, events).
    public var json: JSON { .object(pairs.map { ($0.key, .string($0.value)) }) }

    /// 1–64 bytes of UTF-8 without C0 controls, DEL or any of `=` `,` `+` `*` `?` (the bytes a
    /// control target's tag term gives a meaning, §3.5.2).
    public static func isValidKey(_ key: String) -> Bool {
        Limits.tagKeyBytes.contains(key.utf8.count) && !key.utf8.contains { isControl($0) || forbiddenInKey.contains($0) }
    }

    /// 0–255 bytes of UTF-8 without C0 controls or DEL.
    public static func isValidValue(_ value: String) -> Bool {
        Limits.tagValueBytes.contains(value.utf8.count) && !value.utf8.contains(where: isControl)
    }

    private static let forbiddenInKey: [UInt8] = Array("=,+*?".utf8)
    private static func isControl(_ byte: UInt8) -> Bool { byte < 0x20 || byte == 0x7F }
}

/// Why tags were refused.
public enum MemberTagsError: Error, Equatable, Sendable, CustomStringConvertible {
    case notKeyValue(String)
    case invalidKey(String)
    case invalidValue(key: String)
    case duplicateKey(String)
    case tooLarge(bytes: Int)

    public var description: String {
        switch self {
        case .notKeyValue(let text): "tag \"\(text)\" is not KEY=VALUE"
        case .invalidKey(let key): "tag key \"\(key)\" must be 1–64 bytes without control characters or any of = , + * ?"
        case .invalidValue(let key): "the value of tag \"\(key)\" must be 0–255 bytes without control characters"
        case .duplicateKey(let key): "tag key \"\(key)\" is given twice"
        case .tooLarge(let bytes): "tags take \(bytes) bytes; at most \(Limits.tagsBytes) (2 + key + value per tag)"
        }
    }
}

extension Limits {
    /// The extension type of a member's own tags (Protocol.md §3.4.1); it repeats.
    public static let tagsExtension: UInt8 = 0x01
    /// The extension type of other members' tags listed on a MEMBERS page (§3.4.1); it repeats.
    public static let listedTagsExtension: UInt8 = 0x02
    /// The extension type that makes an ANNOUNCE a HELLO too: its value is the HELLO's
    /// `request_id` (Protocol.md §3.4, §6.3.1).
    public static let helloExtension: UInt8 = 0x03
    /// Bytes of a tag's key and of its value.
    public static let tagKeyBytes = 1...64
    public static let tagValueBytes = 0...255
    /// Bytes of one member's tags on the wire: 2 + key + value per tag, summed.
    public static let tagsBytes = 512
}

extension MemberTags {
    /// The tags of a `members` row or a `tags` event (a JSON object of strings); empty when
    /// absent, and when not valid tags (a reply is hostile input).
    public init(json: JSON?) {
        guard case .object(let fields)? = json else {
            self = .empty
            return
        }
        var pairs: [(String, String)] = []
        for (key, value) in fields {
            guard let text = value.stringValue else {
                self = .empty
                return
            }
            pairs.append((key, text))
        }
        self = (try? MemberTags(pairs: pairs)) ?? .empty
    }
}
