/// An IPv4 or IPv6 address and port (issue 19). Text: `a.b.c.d:port`, `[RFC 5952]:port`.
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    /// IPv4 (mapped) or IPv6: see ``IPAddress``. 16 bytes where a UInt32 was, so a ``Member``
    /// row grew from 72 to 88 bytes (issue 19).
    public var ip: IPAddress
    public var port: UInt16

    public init(ip: IPAddress, port: UInt16) {
        self.ip = ip
        self.port = port
    }

    /// An IPv4 endpoint (`0x7f000001` is 127.0.0.1).
    public init(address: UInt32, port: UInt16) {
        self.init(ip: IPAddress(ipv4: address), port: port)
    }

    /// `a.b.c.d:port` or `[RFC 5952 text]:port`.
    public var description: String {
        ip.ipv4 == nil ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    /// The IPv4 address in host order, as before issue 19; 0 for IPv6. Kept so that embedders'
    /// code builds; the package itself must not use it (CI builds with warnings as errors).
    @available(*, deprecated, message: "use ip (IPv4 or IPv6): ip.ipv4 for the IPv4 address")
    public var address: UInt32 { ip.ipv4 ?? 0 }

    /// The same address with another port.
    public func with(port: UInt16) -> Endpoint { Endpoint(ip: ip, port: port) }

    /// A fixed order (address bytes, then port) for choices that must not follow a dictionary's
    /// order, which is seeded per process.
    func precedes(_ other: Endpoint) -> Bool {
        (ip.high, ip.low, port) < (other.ip.high, other.ip.low, other.port)
    }

    /// Parses "a.b.c.d:port" or "[v6]:port" (port optional, then `defaultPort`); nil for bad
    /// text or a zone (use ``parse(_:defaultPort:)`` for the error and the zone).
    public init?(parsing text: String, defaultPort: UInt16? = nil) {
        guard let (endpoint, zone) = try? Self.parse(text, defaultPort: defaultPort), zone == nil else { return nil }
        self = endpoint
    }
}

extension Endpoint {
    /// Parses `a.b.c.d:port`, `[v6]:port` or `[v6%zone]:port`; the port may be left out when
    /// `defaultPort` is given (then a bare `v6` or `v6%zone` is accepted too). The zone names
    /// an interface: the core carries none (Protocol.md §2.5), the caller checks it.
    public static func parse(_ text: String, defaultPort: UInt16? = nil) throws(AddressError) -> (endpoint: Endpoint, zone: String?) {
        var host = Substring(text)
        var portText: Substring?
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw .invalid(text) }
            let rest = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            guard host.contains(":") else { throw .invalid(text) }
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { throw .invalid(text) }
                portText = rest.dropFirst()
            }
        } else {
            let colons = host.utf8.count(where: { $0 == UInt8(ascii: ":") })
            if colons == 1, let colon = host.firstIndex(of: ":") {
                portText = host[host.index(after: colon)...]
                host = host[..<colon]
            } else if colons > 1, defaultPort == nil {
                throw .needsBrackets(text)
            }
        }
        var zone: String?
        if let percent = host.firstIndex(of: "%") {
            let name = host[host.index(after: percent)...]
            host = host[..<percent]
            guard host.contains(":"), !name.isEmpty, name.utf8.count <= 64 else { throw .badZone(text) }
            zone = String(name)
        }
        let ip = try IPAddress(parsing: host)
        let port: UInt16
        if let portText {
            guard (1...5).contains(portText.utf8.count), portText.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
                  let value = UInt16(portText) else { throw .badPort(text) }
            port = value
        } else {
            guard let defaultPort else { throw .badPort(text) }
            port = defaultPort
        }
        return (Endpoint(ip: ip, port: port), zone)
    }
}
