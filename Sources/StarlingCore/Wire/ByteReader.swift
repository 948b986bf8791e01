/// Big-endian reader over a byte slice. Every read checks bounds and throws
/// ``WireError/truncated(field:)`` instead of trapping.
struct ByteReader: ~Copyable {
    private let bytes: UnsafeRawBufferPointer
    private(set) var offset: Int

    init(_ bytes: UnsafeRawBufferPointer, offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    var remaining: Int { bytes.count - offset }

    @inline(__always)
    private mutating func take(_ count: Int, _ field: StaticString) throws(WireError) -> Int {
        guard count <= remaining else { throw .truncated(field: field.description) }
        let start = offset
        offset += count
        return start
    }

    mutating func u8(_ field: StaticString) throws(WireError) -> UInt8 {
        bytes[try take(1, field)]
    }

    mutating func u16(_ field: StaticString) throws(WireError) -> UInt16 {
        UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: try take(2, field), as: UInt16.self))
    }

    mutating func u32(_ field: StaticString) throws(WireError) -> UInt32 {
        UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: try take(4, field), as: UInt32.self))
    }

    mutating func u64(_ field: StaticString) throws(WireError) -> UInt64 {
        UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: try take(8, field), as: UInt64.self))
    }

    mutating func nodeID(_ field: StaticString) throws(WireError) -> NodeID {
        NodeID(high: try u64(field), low: try u64(field))
    }

    mutating func raw(_ count: Int, _ field: StaticString) throws(WireError) -> [UInt8] {
        let at = try take(count, field)
        return Array(bytes[at..<(at + count)])
    }

    /// A UTF-8 string whose byte length was already read; `bounds` is inclusive.
    mutating func string(length: Int, _ field: StaticString, bounds: ClosedRange<Int>) throws(WireError) -> String {
        guard bounds.contains(length) else { throw .badLength(field: field.description, length: length) }
        let at = try take(length, field)
        let slice = UnsafeRawBufferPointer(rebasing: bytes[at..<(at + length)])
        // Names are nearly always ASCII, which needs no validation beyond the high bit; the
        // generic validator costs about a microsecond per datagram in runtime metadata lookups.
        if !slice.contains(where: { $0 >= 0x80 }) { return String(decoding: slice, as: UTF8.self) }
        guard let text = String(validating: slice, as: UTF8.self) else { throw .invalidUTF8(field: field.description) }
        return text
    }

    /// A string with a one-byte length prefix.
    mutating func string8(_ field: StaticString, bounds: ClosedRange<Int>) throws(WireError) -> String {
        let length = Int(try u8(field))
        return try string(length: length, field, bounds: bounds)
    }

    /// A string with a two-byte length prefix.
    mutating func string16(_ field: StaticString, bounds: ClosedRange<Int>) throws(WireError) -> String {
        let length = Int(try u16(field))
        return try string(length: length, field, bounds: bounds)
    }
}

/// Big-endian writer; the encoder checks bounds before writing, so writes cannot fail.
struct ByteWriter {
    var bytes: [UInt8]

    init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u16(_ value: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }
    mutating func u32(_ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }
    mutating func u64(_ value: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }
    mutating func nodeID(_ id: NodeID) {
        u64(id.high)
        u64(id.low)
    }
    mutating func raw(_ data: some Sequence<UInt8>) { bytes.append(contentsOf: data) }
    mutating func string8(_ text: String) {
        u8(UInt8(clamping: text.utf8.count))
        bytes.append(contentsOf: text.utf8.prefix(255))
    }
    mutating func string16(_ text: String) {
        u16(UInt16(clamping: text.utf8.count))
        bytes.append(contentsOf: text.utf8.prefix(65535))
    }
    /// Overwrites a big-endian u16 already written at `offset`.
    mutating func patch16(at offset: Int, _ value: UInt16) {
        bytes[offset] = UInt8(truncatingIfNeeded: value >> 8)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: value)
    }
}
