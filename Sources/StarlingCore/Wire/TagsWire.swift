/// The wire form of member tags (Protocol.md §3.4.1): a sender's own tags (extension type
/// 0x01) and, on MEMBERS pages, the tags of the members a page lists (type 0x02). Both are byte
/// runs cut into consecutive extension entries of at most 255 bytes.
extension MemberTags {
    /// The extension entries of type ``Limits/tagsExtension`` that carry these tags: the pairs'
    /// bytes cut into runs of 255 (the last shorter); none for no tags.
    public var extensions: [Extension] { Extension.chunks(bytes, type: Limits.tagsExtension) }

    /// The tag bytes: per tag in key order, `key str8` then `value str8`.
    var bytes: [UInt8] {
        var writer = ByteWriter(capacity: encodedSize)
        write(into: &writer)
        return writer.bytes
    }

    /// Writes the tag bytes (valid tags: every key and value fits its `str8`).
    func write(into writer: inout ByteWriter) {
        for pair in pairs {
            writer.string8(pair.key)
            writer.string8(pair.value)
        }
    }

    /// Bytes the extension area takes for these tags, `ext_len` included (0 for no tags).
    var extensionBytes: Int {
        let size = encodedSize
        return size == 0 ? 0 : 2 + Extension.chunkedSize(size)
    }

    /// The tags an extension area carries, or nil when it has no tags entry. Throws as the
    /// decoder does (§5.1 check 16a): entries not consecutive, empty, or more than 512 bytes in
    /// all; a pair cut short; a key or value outside its bounds; keys not in strict byte order.
    static func decode(_ area: [Extension]) throws(WireError) -> MemberTags? {
        guard let bytes = try Extension.run(of: Limits.tagsExtension, in: area) else { return nil }
        return try parse(bytes)
    }

    /// Tags from their bytes (at most 512).
    static func parse(_ bytes: some Collection<UInt8>) throws(WireError) -> MemberTags {
        guard bytes.count <= Limits.tagsBytes else { throw .badLength(field: "tags", length: bytes.count) }
        let parsed: Result<[Pair], WireError> = Array(bytes).withUnsafeBytes { raw in
            do throws(WireError) {
                var reader = ByteReader(raw)
                var pairs: [Pair] = []
                while reader.remaining > 0 {
                    let key = try reader.string8("tag_key", bounds: Limits.tagKeyBytes)
                    let value = try reader.string8("tag_value", bounds: Limits.tagValueBytes)
                    guard isValidKey(key), isValidValue(value) else { throw .invalidValue(field: "tags") }
                    if let last = pairs.last, !bytesPrecede(last.key, key) { throw .invalidValue(field: "tags") }
                    pairs.append(Pair(key: key, value: value))
                }
                return .success(pairs)
            } catch {
                return .failure(error)
            }
        }
        return try MemberTags(sorted: parsed.get())
    }
}

/// Tags of a member listed on a MEMBERS page, as the page's sender holds them (§3.4.1): second
/// hand, so they say at which incarnation of the member they were told.
public struct ListedTags: Sendable, Equatable {
    /// The entry's position on the page (0-based).
    public var index: UInt8
    /// The incarnation the member's own datagram carried them at; never above the entry's.
    public var incarnation: UInt32
    public var tags: MemberTags

    public init(index: UInt8, incarnation: UInt32, tags: MemberTags) {
        self.index = index
        self.incarnation = incarnation
        self.tags = tags
    }

    /// `index u8`, `incarnation u32`, `tags_len u16` before the tag bytes.
    static let fixedSize = 7

    /// What one listed record adds to a page at most, the entry headers its bytes may need included.
    static func pageCost(_ tags: MemberTags) -> Int { Extension.chunkedSize(fixedSize + tags.encodedSize) }

    /// The entries of type ``Limits/listedTagsExtension`` for `records`, in index order.
    public static func extensions(_ records: [ListedTags]) -> [Extension] {
        var writer = ByteWriter(capacity: records.reduce(0) { $0 + fixedSize + $1.tags.encodedSize })
        for record in records {
            writer.u8(record.index)
            writer.u32(record.incarnation)
            // Valid tags take at most 512 bytes.
            writer.u16(UInt16(clamping: record.tags.encodedSize))
            record.tags.write(into: &writer)
        }
        return Extension.chunks(writer.bytes, type: Limits.listedTagsExtension)
    }

    /// The records an extension area lists (empty when none). Throws as the decoder does
    /// (§5.1 check 16a): the run of entries as for type 0x01; a record cut short; indices not
    /// strictly increasing or not below `entryCount` (when given); `tags_len` 0 or over 512; tag
    /// bytes that §3.4.1 refuses.
    static func decode(_ area: [Extension], entryCount: Int?) throws(WireError) -> [ListedTags] {
        guard let bytes = try Extension.run(of: Limits.listedTagsExtension, in: area) else { return [] }
        let parsed: Result<[ListedTags], WireError> = bytes.withUnsafeBytes { raw in
            do throws(WireError) {
                var reader = ByteReader(raw)
                var records: [ListedTags] = []
                while reader.remaining > 0 {
                    let index = try reader.u8("listed_index")
                    let incarnation = try reader.u32("listed_incarnation")
                    let length = Int(try reader.u16("tags_len"))
                    guard length > 0 else { throw .invalidValue(field: "tags_len") }
                    guard length <= Limits.tagsBytes else { throw .badLength(field: "tags", length: length) }
                    let tags = try MemberTags.parse(try reader.raw(length, "tags"))
                    if let last = records.last, last.index >= index { throw .invalidValue(field: "listed_index") }
                    if let entryCount, Int(index) >= entryCount { throw .invalidValue(field: "listed_index") }
                    records.append(ListedTags(index: index, incarnation: incarnation, tags: tags))
                }
                return .success(records)
            } catch {
                return .failure(error)
            }
        }
        return try parsed.get()
    }
}

extension Extension {
    /// `bytes` cut into entries of `type` of at most 255 bytes each; none for no bytes.
    static func chunks(_ bytes: [UInt8], type: UInt8) -> [Extension] {
        stride(from: 0, to: bytes.count, by: 255).map { Extension(type: type, value: Array(bytes[$0..<min($0 + 255, bytes.count)])) }
    }

    /// Bytes `size` bytes take once cut into entries: each entry adds its type and length.
    static func chunkedSize(_ size: Int) -> Int { size + 2 * ((size + 254) / 255) }

    /// The values of the entries of `type`, concatenated; nil when there is none. Entries of a
    /// repeating type are consecutive and never empty (§3.4.1), else `invalid_value`.
    static func run(of type: UInt8, in area: [Extension]) throws(WireError) -> [UInt8]? {
        let positions = area.indices.filter { area[$0].type == type }
        guard let first = positions.first, let last = positions.last else { return nil }
        guard last - first + 1 == positions.count else { throw .invalidValue(field: "extension_run") }
        let run = area[first...last]
        guard !run.contains(where: { $0.value.isEmpty }) else { throw .invalidValue(field: "extension_run") }
        return run.flatMap(\.value)
    }
}
