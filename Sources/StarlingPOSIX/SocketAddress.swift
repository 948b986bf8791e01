@preconcurrency import Glibc
import StarlingCore

/// A socket address of either family, as the kernel takes and gives it (sockaddr_in or
/// sockaddr_in6 inside a sockaddr_storage). The scope id is the shell's business: the core's
/// ``Endpoint`` carries none (Protocol.md §2.5).
struct SocketAddress {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)

    init() {}

    /// `endpoint`, with `scope` (an interface index) applied when the address needs one
    /// (link-local unicast, interface- or link-local multicast).
    init(_ endpoint: Endpoint, scope: UInt32 = 0) {
        if let v4 = endpoint.ip.ipv4 {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = endpoint.port.bigEndian
            address.sin_addr.s_addr = v4.bigEndian
            store(address)
        } else {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = endpoint.port.bigEndian
            withUnsafeMutableBytes(of: &address.sin6_addr) { raw in
                for (index, byte) in endpoint.ip.bytes.enumerated() { raw[index] = byte }
            }
            address.sin6_scope_id = endpoint.ip.needsScope ? scope : 0
            store(address)
        }
    }

    private mutating func store<T>(_ address: T) {
        withUnsafeMutableBytes(of: &storage) { raw in withUnsafeBytes(of: address) { raw.copyMemory(from: $0) } }
        length = socklen_t(MemoryLayout<T>.size)
    }

    var family: Int32 { Int32(storage.ss_family) }

    /// The endpoint, without scope; nil for a family other than IPv4 and IPv6.
    var endpoint: Endpoint? {
        withUnsafeBytes(of: storage) { raw in
            switch family {
            case AF_INET:
                let address = raw.loadUnaligned(as: sockaddr_in.self)
                return Endpoint(address: UInt32(bigEndian: address.sin_addr.s_addr), port: UInt16(bigEndian: address.sin_port))
            case AF_INET6:
                let address = raw.loadUnaligned(as: sockaddr_in6.self)
                let ip = withUnsafeBytes(of: address.sin6_addr) { IPAddress(bytes: $0) }
                return Endpoint(ip: ip, port: UInt16(bigEndian: address.sin6_port))
            default: return nil
            }
        }
    }

    /// The IPv6 scope id (interface index); 0 for IPv4.
    var scope: UInt32 {
        guard family == AF_INET6 else { return 0 }
        return withUnsafeBytes(of: storage) { $0.loadUnaligned(as: sockaddr_in6.self).sin6_scope_id }
    }

    /// Runs `body` with the address as the kernel wants it.
    func withPointer<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        withUnsafeBytes(of: storage) { raw in body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), length) }
    }

    /// Runs `body` with room for an address the kernel writes, then keeps the length it wrote.
    mutating func fill<R>(_ body: (UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> R) -> R {
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutableBytes(of: &storage) { raw in body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &length) }
        self.length = length
        return result
    }
}
