@preconcurrency import Glibc
import StarlingCore

/// A non-blocking IPv4 UDP socket. It owns its descriptor and closes it exactly once, when the
/// last reference goes.
public final class UDPSocket: Sendable {
    public let descriptor: Int32
    /// The local address and port after bind.
    public let local: Endpoint
    /// The receive buffer the kernel actually granted (it may cap what was asked).
    public let receiveBuffer: Int

    private init(descriptor: Int32, local: Endpoint, receiveBuffer: Int) {
        self.descriptor = descriptor
        self.local = local
        self.receiveBuffer = receiveBuffer
    }

    deinit { Sys.close(descriptor) }

    /// Opens a socket with the common options, runs `configure`, binds, and reads back the port.
    private static func open(bind address: Endpoint, receiveBuffer: Int, configure: (Int32) throws(Errno) -> Void) throws(Errno) -> UDPSocket {
        let fd = try Sys.socket(AF_INET, Int32(SOCK_DGRAM.rawValue))
        do throws(Errno) {
            try Sys.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, Int32(receiveBuffer), "setsockopt SO_RCVBUF")
            try configure(fd)
            try Sys.bind(fd, sockaddr(address))
            let bound = try Sys.getsockname(fd)
            // Linux reports double the usable size; that is what the kernel granted.
            let granted = Int(try Sys.getsockoptInt(fd, SOL_SOCKET, SO_RCVBUF))
            return UDPSocket(descriptor: fd, local: endpoint(bound), receiveBuffer: granted)
        } catch {
            Sys.close(fd)
            throw Errno(error.rawValue, error.operation == "bind" ? "bind \(address)" : error.operation)
        }
    }

    /// The unicast socket: bound to the interface address, ephemeral port unless `port` is given.
    /// It also sends to the group, through `interface`, with TTL `ttl` and loopback on.
    public static func unicast(interface: UInt32, port: UInt16, ttl: UInt8 = 1, receiveBuffer: Int = 1 << 20) throws(Errno) -> UDPSocket {
        try open(bind: Endpoint(address: interface, port: port), receiveBuffer: receiveBuffer) { (fd) throws(Errno) in
            try setMulticastSending(fd, interface: interface, ttl: ttl)
        }
    }

    /// The group socket: bound to the group address and port (so it sees only that group), shared
    /// with other agents on the host through SO_REUSEADDR, joined on exactly one interface.
    public static func multicast(group: Endpoint, interface: UInt32, receiveBuffer: Int = 1 << 20) throws(Errno) -> UDPSocket {
        try open(bind: group, receiveBuffer: receiveBuffer) { (fd) throws(Errno) in
            try Sys.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, Int32(1), "setsockopt SO_REUSEADDR")
            var request = ip_mreq()
            request.imr_multiaddr.s_addr = group.address.bigEndian
            request.imr_interface.s_addr = interface.bigEndian
            try Sys.setsockopt(fd, Int32(IPPROTO_IP), IP_ADD_MEMBERSHIP, request, "join group \(group) (IP_ADD_MEMBERSHIP)")
        }
    }

    private static func setMulticastSending(_ fd: Int32, interface: UInt32, ttl: UInt8) throws(Errno) {
        var address = in_addr()
        address.s_addr = interface.bigEndian
        try Sys.setsockopt(fd, Int32(IPPROTO_IP), IP_MULTICAST_IF, address, "setsockopt IP_MULTICAST_IF")
        try Sys.setsockopt(fd, Int32(IPPROTO_IP), IP_MULTICAST_TTL, Int32(ttl), "setsockopt IP_MULTICAST_TTL")
        try Sys.setsockopt(fd, Int32(IPPROTO_IP), IP_MULTICAST_LOOP, Int32(1), "setsockopt IP_MULTICAST_LOOP")
    }

    /// Sends one datagram. Returns false when the socket buffer is full (the datagram is dropped,
    /// as UDP would drop it on the wire).
    @discardableResult
    public func send(_ bytes: [UInt8], to destination: Endpoint) throws(Errno) -> Bool {
        try Sys.typed { try bytes.withUnsafeBytes { try Sys.sendto(descriptor, $0, Self.sockaddr(destination)) } }
    }

    /// Receives one datagram into `buffer`; nil when none is waiting. `count` may exceed the buffer
    /// when the datagram was longer (it was truncated).
    public func receive(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> (count: Int, from: Endpoint)? {
        guard let (count, address) = try Sys.recvfrom(descriptor, buffer) else { return nil }
        return (count, Self.endpoint(address))
    }

    static func sockaddr(_ endpoint: Endpoint) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = endpoint.port.bigEndian
        address.sin_addr.s_addr = endpoint.address.bigEndian
        return address
    }

    static func endpoint(_ address: sockaddr_in) -> Endpoint {
        Endpoint(address: UInt32(bigEndian: address.sin_addr.s_addr), port: UInt16(bigEndian: address.sin_port))
    }
}
