// The byte reader behind the stateful Peer fuzz target (issue 14, "Tests and checks": a stateful
// fuzz target). Shared by `swift test` (PeerFuzzCorpusTests) and the libFuzzer build
// (Tests/Fuzz/FuzzPeer.swift), which compiles this file together with the core as one module.
#if canImport(StarlingCore)
@testable import StarlingCore
#endif

/// Reads decisions from fuzz bytes. Past the end every read is 0, so any input is a program.
/// Integer pickers favour the edges of each width (0, 1, max−1, max, sign bits), since the
/// traps the fuzzer hunts are overflows at those edges.
struct FuzzInput {
    private let bytes: [UInt8]
    private(set) var offset = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    var isEmpty: Bool { offset >= bytes.count }

    mutating func byte() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    /// A number in 0..<count (count ≤ 256 keeps it one byte).
    mutating func below(_ count: Int) -> Int {
        count <= 1 ? 0 : Int(byte()) % count
    }

    /// True about once in `outOf` draws (a zero byte, the end of the input, says false).
    mutating func oneIn(_ outOf: UInt8) -> Bool { byte() % outOf == outOf - 1 }

    mutating func raw<T: FixedWidthInteger & UnsignedInteger>(_ type: T.Type) -> T {
        var value: T = 0
        for _ in 0..<(T.bitWidth / 8) { value = value << 8 | T(byte()) }
        return value
    }

    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }

    /// An integer of any unsigned width, edges first; `near` adds values around a live one
    /// (a current term, clock or request id) so that replies can be accepted.
    mutating func integer<T: FixedWidthInteger & UnsignedInteger>(_ type: T.Type, near: T? = nil) -> T {
        switch byte() % 14 {
        case 0: return 0
        case 1: return 1
        case 2: return T.max - 1
        case 3: return T.max
        case 4: return T(byte()) % (T.max > 255 ? 255 : T.max)
        case 5: return T.max >> 1  // signed max
        case 6: return (T.max >> 1) + 1  // signed min's bit pattern
        case 7: return T(truncatingIfNeeded: UInt32.max)
        case 8: return T(truncatingIfNeeded: UInt64(UInt32.max) + 1)
        case 9, 10:
            guard let near else { return raw(T.self) }
            let delta = T(byte() % 4)
            return byte() & 1 == 0 ? near &+ delta : near &- delta
        case 11: return T(truncatingIfNeeded: UInt64(1) << 62)
        default: return raw(T.self)
        }
    }

    /// Text of `bounds` bytes made from the input (invalid UTF-8 becomes U+FFFD and is cut
    /// back to fit).
    mutating func text(_ bounds: ClosedRange<Int>) -> String {
        let length = below(bounds.upperBound + 1)
        var raw: [UInt8] = []
        for _ in 0..<length { raw.append(byte()) }
        var scalars = Array(String(decoding: raw, as: UTF8.self).unicodeScalars)
        while scalars.reduce(0, { $0 + String($1).utf8.count }) > bounds.upperBound { scalars.removeLast() }
        var result = String(String.UnicodeScalarView(scalars))
        while result.utf8.count < bounds.lowerBound { result += "x" }
        return result
    }
}

/// Values the interpreter picks from: collisions (shared names and ids, NFC next to NFD) and
/// edge lengths are where byte-string and bound bugs live.
enum FuzzPools {
    static let nfc = "caf\u{E9}"
    static let nfd = "cafe\u{301}"
    static let key = AuthKey(Array(0..<32))
    /// The key a rotation may bring in (issue 20: keys rotate while running).
    static let otherKey = AuthKey(Array(repeating: 0xAB, count: 32))
    /// Member tags (issue 18): none, short, keys that differ only as bytes (NFC ≠ NFD), 512 bytes.
    static let tags: [MemberTags] = [
        .empty, try! MemberTags(["role": "web"]), try! MemberTags(pairs: [(nfc, "1"), (nfd, "2")]),
        try! MemberTags(["a": String(repeating: "v", count: 255), "b": String(repeating: "w", count: 248), "c": ""]),
    ]
    static let names = ["a", "b", "node-1", nfc, nfd, String(repeating: "n", count: 64),
        String(repeating: "\u{E9}", count: 32), "x\ny\u{0}", "*", "a,b"]
    static let topics = ["jobs", "t", nfc, nfd, String(repeating: "t", count: 64), "t1", "t2"]
    static let revokedIDs = ["id-1", "id-2", nfc, nfd, String(repeating: "r", count: 128), "\u{0}", "a b", "\u{10FFFF}"]
    static let commands = ["ping", "stats", "members", "revoke", "revoked", "clock", "elect", "leader",
        // "work" is registered as a custom command (§3.5.3); "nope" stays unknown.
        "shutdown", "watch", "nope", "work", "reload", "keys"]
    static let numbers = ["-1", "0", "1", "-9223372036854775808", "9223372036854775807",
        "99999999999999999999", "1e30", "x", ""]
    static let targets = ["", "*", "a", "b", "a,b", nfc, nfd, "?", String(repeating: "*a", count: 64)]
    static let addresses: [UInt32] = [0x7F00_0001, 0, 0xFFFF_FFFF, 0x7F00_0002, 0xEFFF_4E02]
    static let ports: [UInt16] = [0, 1, 9000, 9001, 9100, 65535]
    /// Fake members: their ids are shared by every input so that names, gossip and probes meet.
    static let fakeIDs = (1...4).map { NodeID(high: 0xFA4E, low: UInt64($0)) }
    static let oddIDs = [NodeID(high: 0, low: 0), NodeID(high: .max, low: .max)]
}
