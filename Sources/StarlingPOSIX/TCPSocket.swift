@preconcurrency import Glibc
import StarlingCore

/// A non-blocking IPv4 TCP listening socket (the metrics endpoint). It owns its descriptor and
/// closes it exactly once, when the last reference goes.
public final class TCPListener: Sendable {
    public let descriptor: Int32
    /// The address and port after bind (the port the kernel chose when 0 was asked).
    public let local: Endpoint

    private init(descriptor: Int32, local: Endpoint) {
        self.descriptor = descriptor
        self.local = local
    }

    deinit { Sys.close(descriptor) }

    /// Binds `address` (SO_REUSEADDR, so a restart does not wait out TIME_WAIT) and listens
    /// with room for `backlog` connections waiting to be accepted.
    public static func listen(on address: Endpoint, backlog: Int32 = 16) throws(Errno) -> TCPListener {
        let fd = try Sys.socket(address.ip.family == .ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue))
        do throws(Errno) {
            try Sys.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, Int32(1), "setsockopt SO_REUSEADDR")
            try Sys.bind(fd, SocketAddress(address))
            try Sys.listen(fd, backlog: backlog)
            return TCPListener(descriptor: fd, local: try Sys.getsockname(fd).endpoint ?? address)
        } catch {
            Sys.close(fd)
            throw Errno(error.rawValue, error.operation == "bind" ? "bind \(address) (tcp)" : error.operation)
        }
    }

    /// One waiting connection, non-blocking; nil when none waits. Other errors (EMFILE: out
    /// of descriptors) are thrown: the listener stays readable, so the caller must back off.
    public func accept() throws(Errno) -> TCPConnection? {
        guard let (fd, address) = try Sys.accept(descriptor) else { return nil }
        return TCPConnection(descriptor: fd, peer: address.endpoint ?? local.with(port: 0))
    }
}

/// One non-blocking TCP connection. It owns its descriptor and closes it exactly once, when the
/// last reference goes.
public final class TCPConnection: Sendable {
    public let descriptor: Int32
    /// The other end's address.
    public let peer: Endpoint

    init(descriptor: Int32, peer: Endpoint) {
        self.descriptor = descriptor
        self.peer = peer
    }

    deinit { Sys.close(descriptor) }

    /// Starts connecting to `address` and returns at once; the connection is usable when its
    /// descriptor polls writable and ``connectError()`` is nil (the tests' client).
    public static func connect(to address: Endpoint) throws(Errno) -> TCPConnection {
        let fd = try Sys.socket(address.ip.family == .ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue))
        do throws(Errno) {
            _ = try Sys.connect(fd, SocketAddress(address))
        } catch {
            Sys.close(fd)
            throw Errno(error.rawValue, "connect \(address)")
        }
        return TCPConnection(descriptor: fd, peer: address)
    }

    /// How a connect started by ``connect(to:)`` ended: nil once connected (or still going).
    public func connectError() -> Errno? {
        do {
            let code = try Sys.socketError(descriptor)
            return code == 0 ? nil : Errno(code, "connect \(peer)")
        } catch {
            return error
        }
    }

    /// Reads up to `count` bytes of what is waiting: nil when nothing is, empty at the end of
    /// the stream.
    public func receive(upTo count: Int) throws(Errno) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: max(count, 1))
        guard let received = try Sys.typed({ try buffer.withUnsafeMutableBytes { try Sys.recvStream(descriptor, $0) } }) else { return nil }
        buffer.removeSubrange(received...)
        return buffer
    }

    /// Writes as much of `bytes` as the socket takes now: how much, nil when it takes nothing.
    public func send(_ bytes: ArraySlice<UInt8>) throws(Errno) -> Int? {
        try Sys.typed { try bytes.withUnsafeBytes { try Sys.sendStream(descriptor, $0) } }
    }

    /// Says "no more from this side": the other end reads the end of the stream, and this end
    /// can still read what it sends (a lingering close, so that unread input does not make the
    /// kernel reset the connection before the other end has read the reply).
    public func finishSending() throws(Errno) {
        try Sys.shutdownWriting(descriptor)
    }
}
