@preconcurrency import Glibc
import StarlingCore

/// A local IPv4 interface.
public struct Interface: Sendable, Equatable {
    public var name: String
    public var address: UInt32
    public var isLoopback: Bool
    public var supportsMulticast: Bool
    public var isUp: Bool

    public var addressText: String { Endpoint(address: address, port: 0).description.split(separator: ":")[0].description }

    /// Why an interface cannot carry the group.
    public enum LookupError: Error, Equatable, Sendable, CustomStringConvertible {
        case notFound(String, available: [String])
        case notMulticast(String)
        case down(String)

        public var description: String {
            switch self {
            case .notFound(let name, let available):
                "no IPv4 interface '\(name)' (available: \(available.joined(separator: ", ")))"
            case .notMulticast(let name): "interface '\(name)' does not support multicast"
            case .down(let name): "interface '\(name)' is down"
            }
        }
    }

    /// Every interface with an IPv4 address.
    public static func all() -> [Interface] {
        var head: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&head) == 0 else { return [] }
        defer { freeifaddrs(head) }
        var found: [Interface] = []
        var cursor = head
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let address = entry.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET) else { continue }
            let ipv4 = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) }
            let flags = Int32(bitPattern: entry.pointee.ifa_flags)
            found.append(Interface(name: String(cString: entry.pointee.ifa_name), address: ipv4,
                isLoopback: flags & Int32(IFF_LOOPBACK) != 0,
                supportsMulticast: flags & Int32(IFF_MULTICAST) != 0,
                isUp: flags & Int32(IFF_UP) != 0))
        }
        return found
    }

    /// Finds an interface by name (`lo`, `eth1`) or by one of its IPv4 addresses. Loopback is
    /// accepted although Linux does not flag it MULTICAST: the kernel loops group datagrams back
    /// to local members, which is how agents on one host find each other.
    public static func resolve(_ nameOrAddress: String) throws(LookupError) -> Interface {
        let interfaces = all()
        let wanted = Endpoint(parsing: nameOrAddress, defaultPort: 0)?.address
        guard let match = interfaces.first(where: { $0.name == nameOrAddress || $0.address == wanted }) else {
            throw .notFound(nameOrAddress, available: interfaces.map { "\($0.name) \($0.addressText)" })
        }
        guard match.isUp else { throw .down(match.name) }
        guard match.supportsMulticast || match.isLoopback else { throw .notMulticast(match.name) }
        return match
    }
}
