import StarlingCore
import XCTest

/// Issue 19 (IPv6), review: RFC 5952 text checked against an independent formatter, round
/// trips for seeded random addresses, and random hostile text that must be refused, never trap.
final class IPAddressPropertyTests: XCTestCase {
    /// Groups biased towards zero so that runs, ties and single zero groups all occur.
    static func randomAddress(_ rng: inout SplitMix64) -> IPAddress {
        var groups: [UInt16] = []
        for _ in 0..<8 {
            switch rng.next() % 4 {
            case 0, 1: groups.append(0)
            case 2: groups.append(UInt16(truncatingIfNeeded: rng.next() % 16))
            default: groups.append(UInt16(truncatingIfNeeded: rng.next()))
            }
        }
        var high: UInt64 = 0, low: UInt64 = 0
        for (index, group) in groups.enumerated() {
            if index < 4 { high = high << 16 | UInt64(group) } else { low = low << 16 | UInt64(group) }
        }
        return IPAddress(high: high, low: low)
    }

    /// RFC 5952 §4 written independently of the code under test.
    static func reference(_ ip: IPAddress) -> String {
        if let v4 = ip.ipv4 { return "\(v4 >> 24).\(v4 >> 16 & 0xFF).\(v4 >> 8 & 0xFF).\(v4 & 0xFF)" }
        let bytes = ip.bytes
        let groups = (0..<8).map { UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]) }
        var bestStart = -1, bestLength = 1  // a run must be longer than one group
        for start in 0..<8 {
            var length = 0
            while start + length < 8, groups[start + length] == 0 { length += 1 }
            if length > bestLength { bestStart = start; bestLength = length }
        }
        let hex = groups.map { String($0, radix: 16) }
        if bestStart < 0 { return hex.joined(separator: ":") }
        return hex[..<bestStart].joined(separator: ":") + "::" + hex[(bestStart + bestLength)...].joined(separator: ":")
    }

    /// Issue 19: description is RFC 5952 and parse(description) gives the address back, for
    /// 20,000 seeded random addresses; so do the full-length upper-case and bracketed forms.
    func testRandomAddressesRoundTrip() throws {
        var rng = SplitMix64(seed: 19)
        for _ in 0..<20_000 {
            let ip = Self.randomAddress(&rng)
            let text = ip.description
            XCTAssertEqual(text, Self.reference(ip))
            XCTAssertEqual(try IPAddress(parsing: Substring(text)), ip, text)
            let full = ip.bytes.map { String($0, radix: 16, uppercase: true) }
                .enumerated().map { $0.element.count == 1 ? "0" + $0.element : $0.element }
            let long = stride(from: 0, to: 16, by: 2).map { full[$0] + full[$0 + 1] }.joined(separator: ":")
            XCTAssertEqual(try IPAddress(parsing: Substring(long)), ip, long)
            let endpoint = Endpoint(ip: ip, port: UInt16(truncatingIfNeeded: rng.next()))
            XCTAssertEqual(try Endpoint.parse(endpoint.description).endpoint, endpoint, endpoint.description)
            XCTAssertEqual(Endpoint(parsing: endpoint.description), endpoint)
        }
    }

    /// Issue 19: random text from the characters addresses are made of (plus non-ASCII,
    /// combining marks and NUL) never traps; what parses formats back to a parseable address.
    func testRandomTextNeverTraps() {
        var rng = SplitMix64(seed: 1919)
        let alphabet: [String] = [":", ":", ":", ".", "[", "]", "%", "0", "1", "f", "F", "ff", "ffff", "255", "9",
                                  "g", " ", "\u{0}", "\u{301}", "é", "٣", "\u{FF1A}", "::", "e"]
        var parsed = 0
        for _ in 0..<50_000 {
            let count = Int(rng.next() % 48)
            let text = (0..<count).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }.joined()
            if let ip = try? IPAddress(parsing: Substring(text)) {
                parsed += 1
                XCTAssertEqual(try? IPAddress(parsing: Substring(ip.description)), ip, text)
                XCTAssertTrue(text.utf8.allSatisfy { $0 < 0x80 }, "non-ASCII accepted: \(text.debugDescription)")
            }
            if let (endpoint, zone) = try? Endpoint.parse(text, defaultPort: rng.next() % 2 == 0 ? nil : 1) {
                XCTAssertEqual(Endpoint(parsing: endpoint.description), endpoint, text.debugDescription)
                if let zone { XCTAssertFalse(zone.isEmpty) }
            }
        }
        XCTAssertGreaterThan(parsed, 0, "the generator never produced an address")
    }
}
