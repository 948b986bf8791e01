/// An address family: one cluster is one family (Protocol.md §2.5).
public enum AddressFamily: UInt8, Sendable, Hashable {
    case ipv4 = 4
    case ipv6 = 6
}

/// An IPv4 or IPv6 address in 16 bytes (issue 19). IPv4 is held in its IPv4-mapped form
/// `::ffff:a.b.c.d` (RFC 4291 §2.5.5.2), so one field serves both families with no tag byte;
/// a peer never uses a mapped address as IPv6 (Protocol.md §2.5). No scope id: one cluster runs
/// on one interface, whose index the shell applies to link-local destinations.
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    /// Bytes 0–7 and 8–15 in network order, as big-endian words.
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// An IPv4 address (`0x7f000001` is 127.0.0.1).
    public init(ipv4: UInt32) {
        high = 0
        low = 0xFFFF_0000_0000 | UInt64(ipv4)
    }

    /// The 16 bytes in network order.
    public init(bytes: some Collection<UInt8>) {
        var words: (UInt64, UInt64) = (0, 0)
        for (index, byte) in bytes.prefix(16).enumerated() {
            if index < 8 { words.0 = words.0 << 8 | UInt64(byte) } else { words.1 = words.1 << 8 | UInt64(byte) }
        }
        self.init(high: words.0, low: words.1)
    }

    public var bytes: [UInt8] {
        (0..<16).map { index in UInt8(truncatingIfNeeded: (index < 8 ? high : low) >> UInt64(56 - 8 * (index % 8))) }
    }

    /// The IPv4 address when this is one; nil for IPv6.
    public var ipv4: UInt32? { high == 0 && low >> 32 == 0xFFFF ? UInt32(truncatingIfNeeded: low) : nil }

    public var family: AddressFamily { ipv4 == nil ? .ipv6 : .ipv4 }

    /// 0.0.0.0 or `::`: "the source address of the datagram" in a member entry.
    public var isUnspecified: Bool { ipv4.map { $0 == 0 } ?? (high == 0 && low == 0) }

    /// 224.0.0.0/4 or ff00::/8.
    public var isMulticast: Bool { ipv4.map { $0 >> 28 == 0xE } ?? (high >> 56 == 0xFF) }

    /// Whether a socket needs the interface's index to send here (Protocol.md §2.5): IPv6 unicast
    /// fe80::/10, or IPv6 multicast of interface- or link-local scope (ffX1::, ffX2::).
    public var needsScope: Bool {
        guard ipv4 == nil else { return false }
        if high >> 54 == 0x3FA { return true }
        return high >> 56 == 0xFF && (high >> 48 & 0xF == 1 || high >> 48 & 0xF == 2)
    }

    /// The unspecified address of the same family.
    public var unspecified: IPAddress { ipv4 == nil ? IPAddress(high: 0, low: 0) : IPAddress(ipv4: 0) }

    public static let unspecified6 = IPAddress(high: 0, low: 0)

    /// Dotted quad for IPv4; RFC 5952 text for IPv6 (lower case, leading zeros dropped, the
    /// longest run of two or more zero groups, the first on a tie, shortened to `::`).
    public var description: String {
        if let v4 = ipv4 { return "\(v4 >> 24).\(v4 >> 16 & 0xFF).\(v4 >> 8 & 0xFF).\(v4 & 0xFF)" }
        let groups = (0..<8).map { index in UInt16(truncatingIfNeeded: (index < 4 ? high : low) >> UInt64(48 - 16 * (index % 4))) }
        var best = (start: -1, count: 0)
        var index = 0
        while index < 8 {
            guard groups[index] == 0 else { index += 1; continue }
            var end = index
            while end < 8, groups[end] == 0 { end += 1 }
            if end - index > best.count { best = (index, end - index) }
            index = end
        }
        let text = { (range: Range<Int>) in range.map { String(groups[$0], radix: 16) }.joined(separator: ":") }
        guard best.count >= 2 else { return text(0..<8) }
        return text(0..<best.start) + "::" + text((best.start + best.count)..<8)
    }

    /// Parses a dotted quad or IPv6 text (RFC 4291 §2.2, an embedded dotted quad at the end
    /// included), without brackets or zone.
    public init(parsing text: Substring) throws(AddressError) {
        if !text.contains(":") {
            self.init(ipv4: try Self.parseIPv4(text))
            return
        }
        let utf8 = Array(text.utf8)
        guard utf8.count <= 45 else { throw .invalid(String(text)) }
        let halves = text.split(separator: "::", maxSplits: 1, omittingEmptySubsequences: false)
        // "::" can appear once; a third ':' run (":::") shows as an empty group below.
        guard halves.count <= 2, !(halves.count == 2 && halves[1].contains("::")) else { throw .invalid(String(text)) }
        var head = try Self.groups(halves[0], whole: text, last: halves.count == 1)
        let tail = halves.count == 2 ? try Self.groups(halves[1], whole: text, last: true) : []
        if halves.count == 2 {
            guard head.count + tail.count <= 7 else { throw .invalid(String(text)) }
            head += Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        }
        guard head.count == 8 else { throw .invalid(String(text)) }
        var words: (UInt64, UInt64) = (0, 0)
        for (index, group) in head.enumerated() {
            if index < 4 { words.0 = words.0 << 16 | UInt64(group) } else { words.1 = words.1 << 16 | UInt64(group) }
        }
        self.init(high: words.0, low: words.1)
    }

    /// Colon-separated hex groups; an IPv4 dotted quad may end the last part (two groups).
    private static func groups(_ part: Substring, whole: Substring, last: Bool) throws(AddressError) -> [UInt16] {
        guard !part.isEmpty else { return [] }
        var result: [UInt16] = []
        let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
        for (index, piece) in pieces.enumerated() {
            if last, index == pieces.count - 1, piece.contains(".") {
                guard let v4 = try? parseIPv4(piece) else { throw .invalid(String(whole)) }
                result += [UInt16(truncatingIfNeeded: v4 >> 16), UInt16(truncatingIfNeeded: v4)]
                continue
            }
            guard (1...4).contains(piece.utf8.count), piece.utf8.allSatisfy(isHexDigit), let value = UInt16(piece, radix: 16) else {
                throw .invalid(String(whole))
            }
            result.append(value)
        }
        return result
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x46).contains(byte) || (0x61...0x66).contains(byte)
    }

    private static func parseIPv4(_ text: Substring) throws(AddressError) -> UInt32 {
        let octets = text.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { throw .invalid(String(text)) }
        var address: UInt32 = 0
        for octet in octets {
            // Digits only ("+1" and " 1" are what UInt8(_:) would otherwise let through or not).
            guard (1...3).contains(octet.utf8.count), octet.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
                  let value = UInt8(octet) else { throw .invalid(String(text)) }
            address = address << 8 | UInt32(value)
        }
        return address
    }
}

/// Why an address or endpoint text was refused.
public enum AddressError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Not a dotted quad nor IPv6 text.
    case invalid(String)
    /// The port is missing, not a number, or out of range.
    case badPort(String)
    /// An IPv6 address with a port must be bracketed: `[fe80::1]:5354`.
    case needsBrackets(String)
    /// A zone (`%eth1`) on an IPv4 address, or an empty one.
    case badZone(String)

    public var description: String {
        switch self {
        case .invalid(let text): "'\(text)' is not an IPv4 or IPv6 address"
        case .badPort(let text): "bad or missing port in '\(text)'"
        case .needsBrackets(let text): "'\(text)': write an IPv6 address with a port in brackets, like [ff12::5354]:5354"
        case .badZone(let text): "bad zone in '\(text)' (a zone, like %eth1, goes only on an IPv6 address)"
        }
    }
}
