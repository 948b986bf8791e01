/// SHA-256 (FIPS 180-4), written here because the package takes no dependencies.
/// Verified against the FIPS 180-4 examples in the tests.
public struct SHA256: Sendable {
    private static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    private var state: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) = (
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
    )
    /// The partial block, kept inline (no heap) so that copying a keyed state costs nothing.
    private var block: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    private var used = 0
    private var length: UInt64 = 0

    public init() {}

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
        let words = [state.0, state.1, state.2, state.3, state.4, state.5, state.6, state.7]
        for (index, word) in words.enumerated() { out.storeBytes(of: word.bigEndian, toByteOffset: index * 4, as: UInt32.self) }
        used = 0
    }

    private mutating func compressBlock() {
        var copy = block
        withUnsafeBytes(of: &copy) { compress($0.baseAddress!) }
        used = 0
    }

    @inline(__always)
    private static func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }

    /// One SHA-256 round; the caller rotates the working variables by passing them shifted,
    /// so no value is moved between rounds.
    @inline(__always)
    private static func round(
        _ a: UInt32, _ b: UInt32, _ c: UInt32, _ d: inout UInt32, _ e: UInt32, _ f: UInt32, _ g: UInt32, _ h: inout UInt32,
        _ kw: UInt32
    ) {
        let t1 = h &+ (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) &+ ((e & f) ^ (~e & g)) &+ kw
        d = d &+ t1
        h = t1 &+ (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) &+ ((a & b) ^ (a & c) ^ (b & c))
    }

    private mutating func compress(_ data: UnsafeRawPointer) {
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { w in
            for t in 0..<16 { w[t] = UInt32(bigEndian: data.loadUnaligned(fromByteOffset: t * 4, as: UInt32.self)) }
            for t in 16..<64 {
                let x = w[t - 15]
                let y = w[t - 2]
                let s0 = Self.rotr(x, 7) ^ Self.rotr(x, 18) ^ (x >> 3)
                let s1 = Self.rotr(y, 17) ^ Self.rotr(y, 19) ^ (y >> 10)
                w[t] = w[t - 16] &+ s0 &+ w[t - 7] &+ s1
            }
            var (a, b, c, d, e, f, g, h) = state
            Self.k.withUnsafeBufferPointer { k in
                var t = 0
                while t < 64 {
                    Self.round(a, b, c, &d, e, f, g, &h, k[t] &+ w[t])
                    Self.round(h, a, b, &c, d, e, f, &g, k[t + 1] &+ w[t + 1])
                    Self.round(g, h, a, &b, c, d, e, &f, k[t + 2] &+ w[t + 2])
                    Self.round(f, g, h, &a, b, c, d, &e, k[t + 3] &+ w[t + 3])
                    Self.round(e, f, g, &h, a, b, c, &d, k[t + 4] &+ w[t + 4])
                    Self.round(d, e, f, &g, h, a, b, &c, k[t + 5] &+ w[t + 5])
                    Self.round(c, d, e, &f, g, h, a, &b, k[t + 6] &+ w[t + 6])
                    Self.round(b, c, d, &e, f, g, h, &a, k[t + 7] &+ w[t + 7])
                    t += 8
                }
            }
            state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d,
                     state.4 &+ e, state.5 &+ f, state.6 &+ g, state.7 &+ h)
        }
    }
}

/// A 256-bit cluster key for HMAC-SHA256 (RFC 2104). The inner and outer padded key states are
/// computed once, so a tag costs only the message blocks plus one block.
public struct AuthKey: Sendable, Equatable {
    public let bytes: [UInt8]
    private let inner: SHA256
    private let outer: SHA256

    public static func == (lhs: AuthKey, rhs: AuthKey) -> Bool { lhs.bytes == rhs.bytes }

    /// Any key length is accepted by HMAC; Starling key files hold 32 bytes.
    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        var key = bytes.count > 64 ? SHA256.hash(bytes) : bytes
        key.append(contentsOf: repeatElement(0, count: 64 - key.count))
        var inner = SHA256()
        inner.update(key.map { $0 ^ 0x36 })
        var outer = SHA256()
        outer.update(key.map { $0 ^ 0x5c })
        self.inner = inner
        self.outer = outer
    }

    /// HMAC-SHA256(key, message).
    public func tag(_ message: [UInt8]) -> [UInt8] {
        message.withUnsafeBytes { tag($0) }
    }

    public func tag(_ message: UnsafeRawBufferPointer) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        out.withUnsafeMutableBytes { tag(message, into: $0.baseAddress!) }
        return out
    }

    /// Writes HMAC-SHA256(key, message) to `out` (32 bytes) without allocating.
    public func tag(_ message: UnsafeRawBufferPointer, into out: UnsafeMutableRawPointer) {
        var inner = self.inner
        inner.update(message)
        var innerDigest: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &innerDigest) { digest in
            inner.finalize(into: digest.baseAddress!)
            var outer = self.outer
            outer.update(UnsafeRawBufferPointer(digest))
            outer.finalize(into: out)
        }
    }

    /// Constant-time comparison of the expected tag with `tag`.
    public func verify(_ message: UnsafeRawBufferPointer, tag: UnsafeRawBufferPointer) -> Bool {
        guard tag.count == Limits.tagLength else { return false }
        var expected: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &expected) { bytes in
            self.tag(message, into: bytes.baseAddress!)
            var difference: UInt8 = 0
            for index in 0..<32 { difference |= bytes[index] ^ tag[index] }
            return difference == 0
        }
    }
}
