import StarlingCore
import StarlingPOSIX

/// Keeps a value past the optimiser: a call it may neither look into nor drop, so no encode or
/// decode whose result is handed here can be found dead and removed.
@inline(never) @_optimize(none)
func blackHole<T>(_ value: T) {}

/// Encode and decode rates on one core, per message type, with and without a key. Each loop
/// goes round a ring of distinct datagrams (sequence, stamp and name differ) and hands every
/// result to `blackHole`.
enum CodecScenario {
    static let ringSize = 64
    static func run(_ report: Report, quick: Bool) {
        let sender = NodeID(high: 1, low: 2)
        let header = Header(sequence: 1, stamp: 99, sender: sender, incarnation: 0, replyPort: 40_000, cluster: "starling", name: "worker-17")
        let entries = (0..<8).map { MemberEntry(id: NodeID(high: UInt64($0), low: 1), incarnation: 1, status: .alive,
            endpoint: Endpoint(address: 0x7F00_0001, port: 4000), name: "worker-\($0)") }
        var set = RevokedSet()
        for index in 0..<2_000 { set.insert("d9b1f8a2-5c1e-4f5e-9a51-\(String(100_000_000_000 + index))", revokedAtMillis: 1_800_000_000_000, nowMillis: 1_800_000_000_000) }
        let page = set.page(after: "", mask: .max, budget: Limits.maxDatagram - 120).entries
        // The typical datagram of version 2: a PING with the sender's digest and nothing to
        // piggyback (a quiet cluster); the same with the 8 entries a PING carries at most.
        let target = NodeID(high: 3, low: 4)
        let ping = Payload.ping(Ping(probeID: 1, target: target, revoked: set.digest))
        // Names up to 15 bytes are stored inline in a Swift String; a longer one (a host's FQDN)
        // costs an allocation per decode: one case shows it.
        let cases: [(name: String, payload: Payload, longNames: Bool)] = [
            ("ping", ping, false),
            ("ping, 32-byte names", ping, true),
            ("ping+8 piggyback", .ping(Ping(probeID: 1, target: target, revoked: set.digest, piggyback: entries)), false),
            ("revoked page (\(page.count) ids)", .page(RevokedPage(requestID: 1, index: 0, last: false, entries: page)), false),
            ("candidacy", .candidacy(Candidacy(term: 3, topic: "scheduler")), false),
            ("control request", .controlRequest(ControlRequest(requestID: 1, command: "ping", target: "", args: [])), false),
        ]
        let sampleMillis: UInt64 = quick ? 40 : 200
        for keyed in [false, true] {
            let codec = Codec(keys: keyed ? [AuthKey(Array(repeating: 7, count: 32))] : [])
            let suffix = keyed ? " (authenticated)" : ""
            for (name, payload, longNames) in cases {
                let messages = (0..<ringSize).map { Message(header: variant(header, $0, longName: longNames), payload: payload) }
                let ring = messages.map { try! codec.encode($0) }
                var next = 0
                let encodes = rate(sampleMillis: sampleMillis) {
                    blackHole(try! codec.encode(messages[next]))
                    next = (next + 1) % ringSize
                }
                let decodes = rate(sampleMillis: sampleMillis) {
                    blackHole(try! codec.decode(ring[next]))
                    next = (next + 1) % ringSize
                }
                report.add("codec", "encode \(name)\(suffix)", encodes, "msg/s", samples: 5)
                report.add("codec", "decode \(name)\(suffix)", decodes, "msg/s", samples: 5)
                if name == "ping" {
                    report.add("codec", "decode ping\(suffix), time per datagram", 1e9 / decodes, "ns")
                    report.add("codec", "ping size\(suffix)", Double((try! codec.encode(Message(header: header, payload: payload))).count), "bytes")
                }
            }
        }
        // The agent hands the core up to 16 datagrams drained together; their tags are checked
        // four at a time. Distinct PINGs (sequence numbers differ), as a receiver sees them.
        let keyed = Codec(keys: [AuthKey(Array(repeating: 7, count: 32))])
        let batches = (0..<ringSize / 16).map { first in
            (0..<16).map { try! keyed.encode(Message(header: variant(header, first * 16 + $0), payload: ping)) }
        }
        let perBatch = Codec.withBuffers(batches.flatMap { $0 }) { datagrams in
            precondition(keyed.decode(batch: datagrams).allSatisfy { if case .success = $0 { true } else { false } })
            let groups = (0..<batches.count).map { Array(datagrams[$0 * 16..<($0 + 1) * 16]) }
            var next = 0
            return rate(sampleMillis: sampleMillis) {
                blackHole(keyed.decode(batch: groups[next]))
                next = (next + 1) % groups.count
            }
        }
        report.add("codec", "decode ping (authenticated, batches of 16)", perBatch * 16, "msg/s", samples: 5)
        let key = AuthKey(Array(repeating: 7, count: 32))
        let block = [UInt8](repeating: 0xAB, count: 1_024 * 1_024)
        let start = System.now().nanos
        let rounds = quick ? 20 : 100
        for _ in 0..<rounds { blackHole(key.tag(block)) }
        report.add("codec", "HMAC-SHA256 throughput", Double(rounds) / (Double(System.now().nanos - start) / 1e9), "MB/s")
    }

    /// The `index`th of the ring: sequence, stamp and name differ; names are 8 or 9 bytes, as
    /// "worker-17" (or 32 bytes with `longName`).
    static func variant(_ header: Header, _ index: Int, longName: Bool = false) -> Header {
        var header = header
        header.sequence = UInt64(1_000 + index * 7_919)
        header.stamp = UInt64(99 + index * 31)
        header.name = "worker-\(index)"
        if longName { header.name = "worker-\(index + 10).rack-07.example.lan.eu" }
        return header
    }

    /// Median of five timed samples (each at least `sampleMillis`) after a warm-up, in
    /// operations per second.
    static func rate(sampleMillis: UInt64, _ body: () -> Void) -> Double {
        func sample(_ millis: UInt64) -> Double {
            let start = System.now().nanos
            var count = 0
            while true {
                for _ in 0..<256 { body() }
                count += 256
                let elapsed = System.now().nanos - start
                if elapsed >= .millis(millis) { return Double(count) / (Double(elapsed) / 1e9) }
            }
        }
        _ = sample(sampleMillis / 2)
        let samples = (0..<5).map { _ in sample(sampleMillis) }.sorted()
        return samples[2]
    }
}
