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
    // Whole words, not byte by byte: every MEMBERS entry writes 30-odd bytes, and a cold start
    // of n peers sends about n²/2 entries (Protocol.md A.2 item 3).
    mutating func u16(_ value: UInt16) { word(value) }
    mutating func u32(_ value: UInt32) { word(value) }
    mutating func u64(_ value: UInt64) { word(value) }
    @inline(__always)
    private mutating func word(_ value: some FixedWidthInteger) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }
    mutating func nodeID(_ id: NodeID) {
        u64(id.high)
        u64(id.low)
    }
    mutating func raw(_ data: some Sequence<UInt8>) { bytes.append(contentsOf: data) }
    mutating func string8(_ text: String) { string(text, limit: 255) { $0.u8(UInt8(clamping: $1)) } }
    mutating func string16(_ text: String) { string(text, limit: 65_535) { $0.u16(UInt16(clamping: $1)) } }
    /// The length (by `prefix`, clamped) and at most `limit` bytes of `text`, copied at once.
    private mutating func string(_ text: String, limit: Int, prefix: (inout ByteWriter, Int) -> Void) {
        var text = text
        text.withUTF8 { utf8 in
            prefix(&self, utf8.count)
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8.prefix(limit)))
        }
    }
    /// Fixed-size fields written by `fill` into `capacity` bytes of scratch space, then appended
    /// in one copy: a MEMBERS entry's 28 or 40 fixed bytes cost one append instead of seven or
    /// eight, and a cold start of n peers writes about n²/2 entries.
    mutating func batch(capacity: Int, _ fill: (inout ScratchWriter) -> Void) {
        withUnsafeTemporaryAllocation(byteCount: capacity, alignment: 8) { buffer in
            var scratch = ScratchWriter(buffer: buffer)
            fill(&scratch)
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[..<scratch.offset]))
        }
    }
    /// Overwrites a big-endian u16 already written at `offset`.
    mutating func patch16(at offset: Int, _ value: UInt16) {
        bytes[offset] = UInt8(truncatingIfNeeded: value >> 8)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: value)
    }
}

/// Big-endian writes into scratch space of a size fixed by the caller (``ByteWriter/batch(capacity:_:)``).
struct ScratchWriter {
    fileprivate let buffer: UnsafeMutableRawBufferPointer
    fileprivate private(set) var offset = 0

    fileprivate init(buffer: UnsafeMutableRawBufferPointer) {
        self.buffer = buffer
    }

    mutating func u8(_ value: UInt8) { put(value) }
    mutating func u16(_ value: UInt16) { put(value) }
    mutating func u32(_ value: UInt32) { put(value) }
    mutating func nodeID(_ id: NodeID) {
        put(id.high)
        put(id.low)
    }

    @inline(__always)
    private mutating func put<T: FixedWidthInteger>(_ value: T) {
        // Sizes are the caller's constants, never a datagram's: a miscount is a bug, not input.
        precondition(offset + MemoryLayout<T>.size <= buffer.count, "scratch space too small")
        buffer.storeBytes(of: value.bigEndian, toByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
    }
}
