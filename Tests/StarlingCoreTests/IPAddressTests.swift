import StarlingCore
import XCTest

/// Issue 19 (IPv6): address text both ways, endpoints with brackets and zones, and the rule
/// that one cluster is one family.
final class IPAddressTests: XCTestCase {
    func ip(_ text: String) throws -> IPAddress { try IPAddress(parsing: Substring(text)) }

    /// Issue 19: `members` prints RFC 5952 text (§4: lower case, no leading zeros, the longest
    /// run of two or more zero groups shortened, the first of equal runs).
    func testFormatsRFC5952() throws {
        let cases: [(String, String)] = [
            ("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
            ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
            ("2001:db8:0:0:0:1:0:0", "2001:db8::1:0:0"),
            ("0:0:0:0:0:0:0:0", "::"), ("::1", "::1"), ("1::", "1::"),
            ("fe80:0:0:0:0200:5eff:fe00:5301", "fe80::200:5eff:fe00:5301"),
            ("FF12::5354", "ff12::5354"), ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
            ("127.0.0.2", "127.0.0.2"), ("::ffff:127.0.0.2", "127.0.0.2"), ("64:ff9b::1.2.3.4", "64:ff9b::102:304"),
        ]
        for (input, expected) in cases {
            XCTAssertEqual(try ip(input).description, expected, input)
            XCTAssertEqual(try ip(expected), try ip(input), "round trip of \(expected)")
        }
    }

    /// Issue 19: bad address text is a typed error, never a trap or a guess.
    func testRefusesBadAddresses() {
        for bad in ["", ":", ":::", "1::2::3", "12345::", "g::1", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "::1:", ":1::",
                    "1.2.3", "1.2.3.256", "1.2.3.4.5", "+1.2.3.4", "1..2.3", "::1.2.3", "1.2.3.4::", "::-1", "fe80::1 ",
                    String(repeating: "1", count: 100)] {
            XCTAssertThrowsError(try ip(bad), bad) { XCTAssertEqual($0 as? AddressError, .invalid(bad), bad) }
        }
    }

    /// Issue 19: `--group '[ff12::5354]:5354'`, `--seed '[fe80::1%eth1]:PORT'`, and what is refused.
    func testParsesEndpointsWithBracketsAndZones() throws {
        let group = try Endpoint.parse("[ff12::5354]:5354")
        XCTAssertEqual(group.endpoint, Endpoint(ip: IPAddress(high: 0xFF12 << 48, low: 0x5354), port: 5354))
        XCTAssertNil(group.zone)
        XCTAssertEqual(group.endpoint.description, "[ff12::5354]:5354")
        let seed = try Endpoint.parse("[fe80::1%veth1]:7000")
        XCTAssertEqual(seed.zone, "veth1")
        XCTAssertEqual(seed.endpoint.description, "[fe80::1]:7000")
        XCTAssertEqual(try Endpoint.parse("127.1.2.3:80").endpoint, Endpoint(address: 0x7F01_0203, port: 80))
        XCTAssertEqual(try Endpoint.parse("[::1]", defaultPort: 9).endpoint.port, 9)
        XCTAssertEqual(try Endpoint.parse("fe80::2%veth0", defaultPort: 0).zone, "veth0")
        XCTAssertEqual(Endpoint(parsing: "[fd00::1]:1"), Endpoint(ip: IPAddress(high: 0xFD00 << 48, low: 1), port: 1))
        XCTAssertNil(Endpoint(parsing: "[fe80::1%eth1]:1"), "the failable init takes no zone")
        let refused: [(String, AddressError)] = [
            ("fe80::1:5354", .needsBrackets("fe80::1:5354")), ("[fe80::1]", .badPort("[fe80::1]")),
            ("[fe80::1]:70000", .badPort("[fe80::1]:70000")), ("[fe80::1]:+1", .badPort("[fe80::1]:+1")),
            ("1.2.3.4%eth0:80", .badZone("1.2.3.4%eth0:80")), ("[fe80::1%]:80", .badZone("[fe80::1%]:80")),
            ("[1.2.3.4]:80", .invalid("[1.2.3.4]:80")), ("[fe80::1:80", .invalid("[fe80::1:80")),
            ("[fe80::1]x80", .invalid("[fe80::1]x80")), ("1.2.3.4:", .badPort("1.2.3.4:")),
        ]
        for (text, error) in refused {
            XCTAssertThrowsError(try Endpoint.parse(text), text) { XCTAssertEqual($0 as? AddressError, error, text) }
        }
    }

    /// Issue 19: which destinations the shell gives its interface index (Protocol.md §2.5).
    func testScopeRule() throws {
        XCTAssertTrue(try ip("fe80::1").needsScope)
        XCTAssertTrue(try ip("febf::1").needsScope)
        XCTAssertTrue(try ip("ff12::5354").needsScope)
        XCTAssertTrue(try ip("ff02::1").needsScope)
        XCTAssertFalse(try ip("ff15::1").needsScope)
        XCTAssertFalse(try ip("fd00::1").needsScope)
        XCTAssertFalse(try ip("fec0::1").needsScope)
        XCTAssertFalse(try ip("127.0.0.1").needsScope)
        XCTAssertTrue(try ip("ff12::1").isMulticast)
        XCTAssertTrue(try ip("239.255.83.84").isMulticast)
        XCTAssertFalse(try ip("fe80::1").isMulticast)
        XCTAssertEqual(try ip("fd00::1").bytes, [0xFD, 0] + Array(repeating: 0, count: 13) + [1])
        XCTAssertEqual(IPAddress(bytes: try ip("2001:db8::7").bytes), try ip("2001:db8::7"))
    }

    /// Issue 19: the memory a member row costs (Protocol.md A.2 item 3): 72 bytes with a UInt32
    /// address, 88 with 16 bytes inline (an Endpoint is 18 bytes; nothing smaller holds IPv6).
    func testMemberRowSize() {
        XCTAssertEqual(MemoryLayout<Endpoint>.size, 18)
        XCTAssertEqual(MemoryLayout<Member>.size, 84)
        XCTAssertEqual(MemoryLayout<Member>.stride, 88)
    }

    /// Issue 19: an IPv6 peer applies family-6 entries, the all-zero one as the datagram's
    /// source, and skips family 4 and IPv4-mapped addresses sent as family 6 (one cluster is one
    /// family); an IPv4 peer does the reverse. Each skip is counted `unsupported_family`.
    func testOneClusterIsOneFamily() throws {
        let v6Member = MemberEntry(id: NodeID(high: 0x66, low: 1), incarnation: 1, status: .alive,
            endpoint: Endpoint(ip: try ip("fe80::66"), port: 7066), name: "six")
        let v4Member = MemberEntry(id: NodeID(high: 0x44, low: 1), incarnation: 1, status: .alive,
            endpoint: Endpoint(address: 0x0A00_0044, port: 7044), name: "four")
        let mapped = MemberEntry(id: NodeID(high: 0x46, low: 1), incarnation: 1, status: .alive,
            address: .ipv6(high: 0, low: 0xFFFF_0A00_0046), port: 7046, name: "mapped")
        let sender = NodeID(high: 0x77, low: 1)
        let senderIP = try ip("fe80::77")
        let own = MemberEntry(id: sender, incarnation: 0, status: .alive, endpoint: Endpoint(ip: .unspecified6, port: 9100), name: "sender")
        XCTAssertEqual(own.address, .ipv6(high: 0, low: 0))

        var six = PeerHarness { $0.advertisedAddress = IPAddress(high: 0xFE80 << 48, low: 1) }
        six.start()
        six.receive(.ping(Ping(probeID: 1, target: six.peer.config.id, revoked: six.peer.revoked.digest,
            piggyback: [v6Member, v4Member, mapped, own])), from: sender, name: "sender", ip: senderIP)
        XCTAssertEqual(six.peer.members[v6Member.id]?.endpoint, Endpoint(ip: try ip("fe80::66"), port: 7066))
        XCTAssertEqual(six.peer.members[sender]?.endpoint, Endpoint(ip: senderIP, port: 9100))
        XCTAssertNil(six.peer.members[v4Member.id])
        XCTAssertNil(six.peer.members[mapped.id])
        XCTAssertEqual(six.peer.counters.drops["unsupported_family"], 2)
        // Its own entry goes out as family 6, all zero (the receiver takes the source).
        let ownEntries = six.sentPayloads().compactMap { payload -> [MemberEntry]? in
            if case .ping(let ping) = payload { return ping.piggyback }
            if case .ack(let ack) = payload { return ack.piggyback }
            return nil
        }.flatMap { $0 }.filter { $0.id == six.peer.config.id }
        XCTAssertTrue(ownEntries.allSatisfy { $0.address == .ipv6(high: 0, low: 0) }, "\(ownEntries)")

        var four = PeerHarness()
        four.start()
        four.receive(.ping(Ping(probeID: 1, target: four.peer.config.id, revoked: four.peer.revoked.digest,
            piggyback: [v6Member, v4Member, mapped])), from: sender, name: "sender")
        XCTAssertEqual(four.peer.members[v4Member.id]?.endpoint, Endpoint(address: 0x0A00_0044, port: 7044))
        XCTAssertNil(four.peer.members[v6Member.id])
        XCTAssertNil(four.peer.members[mapped.id])
        XCTAssertEqual(four.peer.counters.drops["unsupported_family"], 2)
    }
}
