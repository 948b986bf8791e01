import StarlingCore
import StarlingPOSIX

/// Encode and decode rates on one core, per message type, with and without a key.
enum CodecScenario {
    static func run(_ report: Report, quick: Bool) {
        let sender = NodeID(high: 1, low: 2)
        let header = Header(sequence: 1, stamp: 99, sender: sender, incarnation: 0, replyPort: 40_000, cluster: "starling", name: "worker-17")
        let entries = (0..<8).map { MemberEntry(id: NodeID(high: UInt64($0), low: 1), incarnation: 1, status: .alive,
            endpoint: Endpoint(address: 0x7F00_0001, port: 4000), intervalMillis: 150, name: "worker-\($0)") }
        var set = RevokedSet()
        for index in 0..<2_000 { set.insert("d9b1f8a2-5c1e-4f5e-9a51-\(String(100_000_000_000 + index))", revokedAtMillis: 1_800_000_000_000, nowMillis: 1_800_000_000_000) }
        let page = set.page(after: "", mask: .max, budget: Limits.maxDatagram - 120).entries
        let cases: [(String, Payload)] = [
            ("heartbeat", .heartbeat(Beat(intervalMillis: 150, memberCount: 30, revoked: set.digest, gossip: []))),
            ("heartbeat+8 gossip", .heartbeat(Beat(intervalMillis: 150, memberCount: 30, revoked: set.digest, gossip: entries))),
            ("revoked page (\(page.count) ids)", .page(RevokedPage(requestID: 1, index: 0, last: false, entries: page))),
            ("candidacy", .candidacy(Candidacy(term: 3, topic: "scheduler"))),
            ("control request", .controlRequest(ControlRequest(requestID: 1, command: "ping", target: "", args: []))),
        ]
        let sampleMillis: UInt64 = quick ? 40 : 200
        for keyed in [false, true] {
            let codec = Codec(keys: keyed ? [AuthKey(Array(repeating: 7, count: 32))] : [])
            let suffix = keyed ? " (authenticated)" : ""
            for (name, payload) in cases {
                let message = Message(header: header, payload: payload)
                let bytes = try! codec.encode(message)
                let encodes = rate(sampleMillis: sampleMillis) { _ = try! codec.encode(message) }
                let decodes = rate(sampleMillis: sampleMillis) { _ = try! codec.decode(bytes) }
                report.add("codec", "encode \(name)\(suffix)", encodes, "msg/s")
                report.add("codec", "decode \(name)\(suffix)", decodes, "msg/s")
                if name == "heartbeat" { report.add("codec", "heartbeat size\(suffix)", Double(bytes.count), "bytes") }
            }
        }
        // The agent hands the core up to 16 datagrams drained together; their tags are checked
        // four at a time. Distinct heartbeats (sequence numbers differ), as a receiver sees them.
        let keyed = Codec(keys: [AuthKey(Array(repeating: 7, count: 32))])
        let batch = (1...16).map { sequence in
            var batchHeader = header
            batchHeader.sequence = UInt64(sequence)
            return try! keyed.encode(Message(header: batchHeader, payload: cases[0].1))
        }
        let perBatch = Codec.withBuffers(batch) { datagrams in
            precondition(keyed.decode(batch: datagrams).allSatisfy { if case .success = $0 { true } else { false } })
            return rate(sampleMillis: sampleMillis) { _ = keyed.decode(batch: datagrams) }
        }
        report.add("codec", "decode heartbeat (authenticated, batches of 16)", perBatch * Double(batch.count), "msg/s")
        let key = AuthKey(Array(repeating: 7, count: 32))
        let block = [UInt8](repeating: 0xAB, count: 1_024 * 1_024)
        let start = System.now().nanos
        let rounds = quick ? 20 : 100
        for _ in 0..<rounds { _ = key.tag(block) }
        report.add("codec", "HMAC-SHA256 throughput", Double(rounds) / (Double(System.now().nanos - start) / 1e9), "MB/s")
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
