@preconcurrency import Glibc
import StarlingCore

/// A local interface and one of its addresses, IPv4 or IPv6.
public struct Interface: Sendable, Equatable {
    public var name: String
    public var address: IPAddress
    /// The interface index: what IPv6 joins groups with and scopes link-local addresses by (0
    /// when unknown: an IPv4 socket opened by address alone).
    public var index: UInt32
    public var isLoopback: Bool
    public var supportsMulticast: Bool
    public var isUp: Bool

    public init(name: String, address: IPAddress, index: UInt32, isLoopback: Bool, supportsMulticast: Bool, isUp: Bool) {
        self.name = name
        self.address = address
        self.index = index
        self.isLoopback = isLoopback
        self.supportsMulticast = supportsMulticast
        self.isUp = isUp
    }

    /// An IPv4 address taken as it is, with no lookup (tests and tools that bind 127.0.0.1).
    public init(ipv4: UInt32) {
        self.init(name: "", address: IPAddress(ipv4: ipv4), index: 0, isLoopback: ipv4 >> 24 == 127, supportsMulticast: true, isUp: true)
    }

    public var addressText: String { address.description }

    /// Why an interface cannot carry the group.
    public enum LookupError: Error, Equatable, Sendable, CustomStringConvertible {
        case notFound(String, family: AddressFamily, available: [String])
        case notMulticast(String)
        case down(String)

        public var description: String {
            switch self {
            case .notFound(let name, let family, let available):
                "no \(family == .ipv4 ? "IPv4" : "IPv6") interface '\(name)' (available: \(available.joined(separator: ", ")))"
            case .notMulticast(let name): "interface '\(name)' does not support multicast"
            case .down(let name): "interface '\(name)' is down"
            }
        }
    }

    /// Every address of every interface, of `family`.
    public static func all(_ family: AddressFamily = .ipv4) -> [Interface] {
        var head: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&head) == 0 else { return [] }
        defer { freeifaddrs(head) }
        var found: [Interface] = []
        var cursor = head
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let raw = entry.pointee.ifa_addr else { continue }
            let address: IPAddress
            switch (Int32(raw.pointee.sa_family), family) {
            case (AF_INET, .ipv4):
                address = raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { IPAddress(ipv4: UInt32(bigEndian: $0.pointee.sin_addr.s_addr)) }
            case (AF_INET6, .ipv6):
                address = raw.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                    withUnsafeBytes(of: pointer.pointee.sin6_addr) { IPAddress(bytes: $0) }
                }
            default: continue
            }
            let name = String(cString: entry.pointee.ifa_name)
            let flags = Int32(bitPattern: entry.pointee.ifa_flags)
            found.append(Interface(name: name, address: address, index: Sys.interfaceIndex(name) ?? 0,
                isLoopback: flags & Int32(IFF_LOOPBACK) != 0,
                supportsMulticast: flags & Int32(IFF_MULTICAST) != 0,
                isUp: flags & Int32(IFF_UP) != 0))
        }
        return found
    }

    /// Finds an interface by name (`lo`, `eth1`) or by one of its addresses, of `family`. For
    /// IPv6 a name gives its link-local address (fe80::/10), or its first IPv6 address when it
    /// has none; an address (`fd00::1`, `fe80::1%eth1`) is the chosen one. Loopback is
    /// accepted although Linux does not flag it MULTICAST: the kernel loops group datagrams back
    /// to local members, which is how agents on one host find each other (IPv4 only: IPv6
    /// multicast does not flow on `lo`).
    public static func resolve(_ nameOrAddress: String, family: AddressFamily = .ipv4) throws(LookupError) -> Interface {
        let interfaces = all(family)
        let parsed = try? Endpoint.parse(nameOrAddress, defaultPort: 0)
        let wanted = parsed?.endpoint.ip
        let byName = interfaces.filter { bytesEqual($0.name, nameOrAddress) }
        let match = wanted.flatMap { ip in
            interfaces.first { candidate in
                candidate.address == ip && (parsed?.zone.map { bytesEqual(candidate.name, $0) } ?? true)
            }
        } ?? byName.first(where: { $0.address.needsScope }) ?? byName.first
        guard let match else {
            throw .notFound(nameOrAddress, family: family, available: interfaces.map { "\($0.name) \($0.addressText)" })
        }
        guard match.isUp else { throw .down(match.name) }
        guard match.supportsMulticast || match.isLoopback else { throw .notMulticast(match.name) }
        return match
    }
}
