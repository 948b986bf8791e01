/// A 256-bit cluster key for HMAC-SHA256 (RFC 2104). The inner and outer padded key states are
/// computed once, so a tag costs only the message blocks plus one block.
public struct AuthKey: Sendable, Equatable {
    public let bytes: [UInt8]
    let inner: SHA256
    let outer: SHA256

    public static func == (lhs: AuthKey, rhs: AuthKey) -> Bool { lhs.bytes == rhs.bytes }

    /// The first 8 bytes of the key's SHA-256 in hex: names a key in listings (`keys`, the log)
    /// without revealing it.
    public var fingerprint: String { Hex.encode(SHA256.hash(bytes).prefix(8)) }

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
