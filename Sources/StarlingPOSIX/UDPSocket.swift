@preconcurrency import Glibc
import StarlingCore

/// A non-blocking UDP socket, IPv4 or IPv6 (one cluster is one family: Protocol.md §2.5). It
/// owns its descriptor and closes it exactly once, when the last reference goes.
public final class UDPSocket: Sendable {
    public let descriptor: Int32
    /// The local address and port after bind.
    public let local: Endpoint
    /// The receive buffer the kernel actually granted (it may cap what was asked).
    public let receiveBuffer: Int
    /// IPv6: the interface index applied to link-local destinations (the core's endpoints carry
    /// no scope id, Protocol.md §2.5); 0 for IPv4.
    public let scope: UInt32

    private init(descriptor: Int32, local: Endpoint, receiveBuffer: Int, scope: UInt32) {
        self.descriptor = descriptor
        self.local = local
        self.receiveBuffer = receiveBuffer
        self.scope = scope
    }

    deinit { Sys.close(descriptor) }

    /// Opens a socket of `address`'s family with the common options, runs `configure`, binds,
    /// and reads back the port. IPv6 sockets are IPV6_V6ONLY: an IPv4 datagram cannot reach an
    /// IPv6 cluster's socket.
    private static func open(bind address: Endpoint, scope: UInt32, receiveBuffer: Int,
                             configure: (Int32) throws(Errno) -> Void) throws(Errno) -> UDPSocket {
        let ipv6 = address.ip.family == .ipv6
        let fd = try Sys.socket(ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_DGRAM.rawValue))
        do throws(Errno) {
            if ipv6 { try Sys.setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, Int32(1), "setsockopt IPV6_V6ONLY") }
            try Sys.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, Int32(receiveBuffer), "setsockopt SO_RCVBUF")
            try configure(fd)
            try Sys.bind(fd, SocketAddress(address, scope: scope))
            let bound = try Sys.getsockname(fd).endpoint ?? address
            // Linux reports double the usable size; that is what the kernel granted.
            let granted = Int(try Sys.getsockoptInt(fd, SOL_SOCKET, SO_RCVBUF))
            return UDPSocket(descriptor: fd, local: bound, receiveBuffer: granted, scope: ipv6 ? scope : 0)
        } catch {
            Sys.close(fd)
            throw Errno(error.rawValue, error.operation == "bind" ? "bind \(address)" : error.operation)
        }
    }

    /// The unicast socket: bound to the interface's address (IPv6: its link-local or chosen
    /// address, with its scope id), ephemeral port unless `port` is given. It also sends to the
    /// group through that interface, with TTL (hop limit) `ttl` and loopback on.
    public static func unicast(on interface: Interface, port: UInt16, ttl: UInt8 = 1, receiveBuffer: Int = 1 << 20) throws(Errno) -> UDPSocket {
        try open(bind: Endpoint(ip: interface.address, port: port), scope: interface.index, receiveBuffer: receiveBuffer) { (fd) throws(Errno) in
            try setMulticastSending(fd, interface: interface, ttl: ttl)
        }
    }

    /// ``unicast(on:port:ttl:receiveBuffer:)`` on an IPv4 address.
    public static func unicast(interface: UInt32, port: UInt16, ttl: UInt8 = 1, receiveBuffer: Int = 1 << 20) throws(Errno) -> UDPSocket {
        try unicast(on: Interface(ipv4: interface), port: port, ttl: ttl, receiveBuffer: receiveBuffer)
    }

    /// The group socket: bound to the group address and port (so it sees only that group; IPv6:
    /// with the interface's scope id, so only that interface), shared with other agents on the
    /// host through SO_REUSEADDR, joined on exactly one interface.
    public static func multicast(group: Endpoint, on interface: Interface, receiveBuffer: Int = 1 << 20) throws(Errno) -> UDPSocket {
        try open(bind: group, scope: interface.index, receiveBuffer: receiveBuffer) { (fd) throws(Errno) in
            try Sys.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, Int32(1), "setsockopt SO_REUSEADDR")
            if group.ip.family == .ipv6 {
                var request = ipv6_mreq()
                withUnsafeMutableBytes(of: &request.ipv6mr_multiaddr) { raw in
                    for (index, byte) in group.ip.bytes.enumerated() { raw[index] = byte }
                }
                request.ipv6mr_interface = interface.index
                // IPV6_ADD_MEMBERSHIP is the same option as RFC 3493's IPV6_JOIN_GROUP on Linux.
                let bytes = withUnsafeBytes(of: request) { Array($0) }
                try Sys.setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_ADD_MEMBERSHIP, bytes: bytes, "join group \(group) (IPV6_JOIN_GROUP)")
            } else {
                var request = ip_mreq()
                request.imr_multiaddr.s_addr = (group.ip.ipv4 ?? 0).bigEndian
                request.imr_interface.s_addr = (interface.address.ipv4 ?? 0).bigEndian
                try Sys.setsockopt(fd, Int32(IPPROTO_IP), IP_ADD_MEMBERSHIP, request, "join group \(group) (IP_ADD_MEMBERSHIP)")
            }
        }
    }

    /// ``multicast(group:on:receiveBuffer:)`` on an IPv4 address.
    public static func multicast(group: Endpoint, interface: UInt32, receiveBuffer: Int = 1 << 20) throws(Errno) -> UDPSocket {
        try multicast(group: group, on: Interface(ipv4: interface), receiveBuffer: receiveBuffer)
    }

    private static func setMulticastSending(_ fd: Int32, interface: Interface, ttl: UInt8) throws(Errno) {
        if interface.address.family == .ipv6 {
            try Sys.setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_MULTICAST_IF, interface.index, "setsockopt IPV6_MULTICAST_IF")
            try Sys.setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_MULTICAST_HOPS, Int32(ttl), "setsockopt IPV6_MULTICAST_HOPS")
            try Sys.setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_MULTICAST_LOOP, UInt32(1), "setsockopt IPV6_MULTICAST_LOOP")
            return
        }
        var address = in_addr()
        address.s_addr = (interface.address.ipv4 ?? 0).bigEndian
        try Sys.setsockopt(fd, Int32(IPPROTO_IP), IP_MULTICAST_IF, address, "setsockopt IP_MULTICAST_IF")
        try Sys.setsockopt(fd, Int32(IPPROTO_IP), IP_MULTICAST_TTL, Int32(ttl), "setsockopt IP_MULTICAST_TTL")
        try Sys.setsockopt(fd, Int32(IPPROTO_IP), IP_MULTICAST_LOOP, Int32(1), "setsockopt IP_MULTICAST_LOOP")
    }

    /// Sends one datagram. Returns false when the socket buffer is full (the datagram is dropped,
    /// as UDP would drop it on the wire). A link-local IPv6 destination gets this socket's scope.
    @discardableResult
    public func send(_ bytes: [UInt8], to destination: Endpoint) throws(Errno) -> Bool {
        let address = SocketAddress(destination, scope: scope)
        return try Sys.typed { try bytes.withUnsafeBytes { try Sys.sendto(descriptor, $0, address) } }
    }

    /// Receives one datagram into `buffer`; nil when none is waiting. `count` may exceed the buffer
    /// when the datagram was longer (it was truncated). The source's scope id is dropped: it is
    /// this socket's interface (the socket is bound to it).
    public func receive(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> (count: Int, from: Endpoint)? {
        guard let (count, address) = try Sys.recvfrom(descriptor, buffer) else { return nil }
        return (count, address.endpoint ?? Endpoint(ip: local.ip.unspecified, port: 0))
    }
}
