/// SHA-256 (FIPS 180-4), written here because the package takes no dependencies.
/// Verified against the FIPS 180-4 examples in the tests.
public struct SHA256: Sendable {
    private var state: SHA256Rounds.State<UInt32> = (
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
    )
    /// The partial block, kept inline (no heap) so that copying a keyed state costs nothing.
    private var block: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    private var used = 0
    private var length: UInt64 = 0

    public init() {}

    /// The chaining value; for a state that has taken whole blocks only, it is all there is.
    var words: SHA256Rounds.State<UInt32> { state }

    /// The digest of `data` in one call.
    public static func hash(_ data: some Sequence<UInt8>) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(Array(data))
        return hasher.finalize()
    }

    public mutating func update(_ data: [UInt8]) {
        data.withUnsafeBytes { update($0) }
    }

    public mutating func update(_ data: UnsafeRawBufferPointer) {
        guard let base = data.baseAddress, data.count > 0 else { return }
        length &+= UInt64(data.count)
        var index = 0
        if used > 0 {
            let take = min(64 - used, data.count)
            let offset = used
            withUnsafeMutableBytes(of: &block) { ($0.baseAddress! + offset).copyMemory(from: base, byteCount: take) }
            used += take
            index = take
            if used < 64 { return }
            compressBlock()
        }
        while data.count - index >= 64 {
            compress(base + index)
            index += 64
        }
        let rest = data.count - index
        if rest > 0 {
            withUnsafeMutableBytes(of: &block) { $0.baseAddress!.copyMemory(from: base + index, byteCount: rest) }
        }
        used = rest
    }

    public mutating func finalize() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        out.withUnsafeMutableBytes { finalize(into: $0.baseAddress!) }
        return out
    }

    /// Writes the 32-byte digest to `out` without allocating.
    public mutating func finalize(into out: UnsafeMutableRawPointer) {
        let bitLength = length &* 8
        let offset = used
        withUnsafeMutableBytes(of: &block) { bytes in
            bytes[offset] = 0x80
            for index in (offset + 1)..<64 { bytes[index] = 0 }
        }
        if offset >= 56 {
            compressBlock()
            block = (0, 0, 0, 0, 0, 0, 0, 0)
        }
        block.7 = bitLength.bigEndian
        compressBlock()
        withUnsafeBytes(of: state) { words in
            for index in 0..<8 {
                out.storeBytes(of: words.load(fromByteOffset: index * 4, as: UInt32.self).bigEndian, toByteOffset: index * 4, as: UInt32.self)
            }
        }
        used = 0
    }

    private mutating func compressBlock() {
        var copy = block
        withUnsafeBytes(of: &copy) { compress($0.baseAddress!) }
        used = 0
    }

    private mutating func compress(_ data: UnsafeRawPointer) {
        SHA256Rounds.compress(&state, SHA256Rounds.block { UInt32(bigEndian: data.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)) })
    }
}
