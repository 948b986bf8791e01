import StarlingCore
import XCTest

/// Codec properties beyond the fixed vectors: generated round trips, mutation robustness and
/// authentication (Protocol.md §2, §5, §7).
final class CodecTests: XCTestCase {
    var rng = SplitMix64(seed: 2026)

    func randomString(_ range: ClosedRange<Int>) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789-_.é✓")
        var text = ""
        let target = Int.random(in: range, using: &rng)
        while text.utf8.count < target {
            let next = String(alphabet[Int(rng.next() % UInt64(alphabet.count))])
            if text.utf8.count + next.utf8.count > range.upperBound { break }
            text += next
        }
        if text.utf8.count < range.lowerBound { text = String(repeating: "x", count: range.lowerBound) }
        return text
    }

    func randomEntry() -> MemberEntry {
        MemberEntry(id: NodeID.random(using: &rng), incarnation: UInt32.random(in: 0...9, using: &rng),
            status: MemberStatus.allCases.randomElement(using: &rng)!, endpoint: Endpoint(address: UInt32.random(in: 0...UInt32.max, using: &rng), port: 7),
            intervalMillis: UInt32.random(in: 1...1000, using: &rng), name: randomString(1...12))
    }

    func randomPayload() -> Payload {
        let digest = SetDigest(count: UInt32.random(in: 0...99, using: &rng), hash: rng.next())
        switch rng.next() % 17 {
        case 0: return .announce(Beat(intervalMillis: 150, memberCount: 3, revoked: digest, gossip: (0..<Int(rng.next() % 4)).map { _ in randomEntry() }))
        case 1: return .heartbeat(Beat(intervalMillis: 99, memberCount: 9, revoked: digest, gossip: (0..<Int(rng.next() % 8)).map { _ in randomEntry() }))
        case 2: return .goodbye
        case 3: return .probe(Probe(probeID: UInt32.random(in: 0...UInt32.max, using: &rng), target: NodeID.random(using: &rng)))
        case 4: return .probeAck(Probe(probeID: 1, target: NodeID.random(using: &rng)))
        case 5: return .members(MembersPage(replyWanted: rng.next() % 2 == 0, page: 0, pageCount: 2, entries: (0..<5).map { _ in randomEntry() }))
        case 6: return .hello(Hello(requestID: 5, revoked: digest))
        case 7: return .helloReply(HelloReply(requestID: 5, memberCount: 4, revoked: digest, members: [randomEntry()]))
        case 8: return .pageRequest(PageRequest(requestID: 1, bucketMask: rng.next(), maxPages: 3, cursor: randomString(0...20), until: randomString(0...20)))
        case 9: return .page(RevokedPage(requestID: 2, index: 1, last: false, entries: (0..<10).map { _ in RevokedEntry(id: randomString(1...40), revokedAtMillis: rng.next() >> 20) }))
        case 10: return .digestRequest(requestID: 3)
        case 11: return .digestReply(DigestReply(requestID: 3, buckets: (0..<64).map { _ in digest }))
        case 12: return .candidacy(Candidacy(term: rng.next() >> 12, topic: randomString(1...30)))
        case 13: return .leader(LeaderAnnouncement(term: 2, leader: NodeID.random(using: &rng), leaderStamp: 9, topic: randomString(1...20), leaderName: randomString(1...20)))
        case 14: return .vote(Vote(term: 2, candidate: NodeID.random(using: &rng), candidateStamp: 3, topic: randomString(1...10)))
        case 15: return .controlRequest(ControlRequest(requestID: 9, command: randomString(1...10), target: randomString(0...10), args: (0..<3).map { _ in randomString(0...30) }))
        default: return .controlReply(ControlReply(requestID: 9, status: .error, memberCount: 2, page: 1, pageCount: 3, body: Array(randomString(0...200).utf8)))
        }
    }

    func randomMessage() -> Message {
        Message(header: Header(sequence: rng.next() >> 1, stamp: rng.next() >> 1, sender: NodeID.random(using: &rng), incarnation: UInt32.random(in: 0...UInt32.max, using: &rng),
            replyPort: UInt16.random(in: 0...UInt16.max, using: &rng), cluster: randomString(1...32), name: randomString(1...64)), payload: randomPayload())
    }

    func testGeneratedMessagesRoundTrip() throws {
        for keys in [[], [AuthKey(Array(repeating: 1, count: 32))]] {
            let codec = Codec(keys: keys)
            for _ in 0..<2_000 {
                let message = randomMessage()
                let bytes = try codec.encode(message)
                var decoded = try codec.decode(bytes)
                XCTAssertLessThanOrEqual(bytes.count, Limits.maxDatagram)
                if !keys.isEmpty { decoded.header.flags &= ~Limits.flagAuthenticated }
                XCTAssertEqual(decoded, message)
            }
        }
    }

    func testMutatedDatagramsNeverTrap() throws {
        let codec = Codec()
        for _ in 0..<20_000 {
            var bytes = try codec.encode(randomMessage())
            for _ in 0..<Int(rng.next() % 4 + 1) {
                switch rng.next() % 3 {
                case 0: bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next())
                case 1: bytes.removeLast(Int(rng.next() % UInt64(bytes.count)))
                default: bytes.append(UInt8(truncatingIfNeeded: rng.next()))
                }
                if bytes.isEmpty { bytes = [0] }
            }
            _ = try? codec.decode(bytes)
        }
    }

    func testTamperingAnyByteOfAnAuthenticatedDatagramIsRejected() throws {
        let key = AuthKey(Array(repeating: 9, count: 32))
        let codec = Codec(keys: [key])
        let bytes = try codec.encode(Samples.message(Samples.payloads[1].1))
        for offset in 0..<bytes.count {
            var tampered = bytes
            tampered[offset] ^= 0x01
            XCTAssertThrowsError(try codec.decode(tampered), "offset \(offset) accepted")
        }
    }

    func testKeyRotationVerifiesWithAnyKeyAndSignsWithTheFirst() throws {
        let old = AuthKey(Array(repeating: 1, count: 32))
        let new = AuthKey(Array(repeating: 2, count: 32))
        let message = Samples.message(.goodbye)
        for (signer, verifier) in [([old], [new, old]), ([new, old], [old, new]), ([new], [new, old])] {
            XCTAssertNoThrow(try Codec(keys: verifier).decode(try Codec(keys: signer).encode(message)))
        }
        XCTAssertThrowsError(try Codec(keys: [old]).decode(try Codec(keys: [new]).encode(message)))
    }

    /// Batches check tags four at a time, one message per SIMD lane; every answer must be the
    /// one-by-one answer, whatever mix of lengths (1 to 22 blocks), keys and faults shares a batch.
    func testBatchDecodeAnswersExactlyAsOneByOne() throws {
        let first = AuthKey(Array(repeating: 3, count: 32))
        let second = AuthKey(Array(repeating: 4, count: 32))
        let receiver = Codec(keys: [first, second])
        let signers = [Codec(keys: [first]), Codec(keys: [second]), Codec(keys: [AuthKey(Array(repeating: 5, count: 32))]), Codec()]
        var outcomes: [String: Int] = [:]
        for _ in 0..<300 {
            let datagrams: [[UInt8]] = try (0..<Int(rng.next() % 20 + 1)).map { _ in
                var bytes = try signers[Int(rng.next() % 8) % 4 == 3 ? 3 : Int(rng.next() % 3)].encode(randomMessage())
                switch rng.next() % 6 {
                case 0: bytes[Int(rng.next() % UInt64(bytes.count))] ^= 1 << (rng.next() % 8)
                case 1: bytes.removeLast()
                default: break
                }
                return bytes
            }
            let batch = Codec.withBuffers(datagrams) { receiver.decode(batch: $0) }
            XCTAssertEqual(batch.count, datagrams.count)
            for (bytes, result) in zip(datagrams, batch) {
                let single = Result { () throws(WireError) in try receiver.decode(bytes) }
                XCTAssertEqual(result, single)
                let outcome = switch single { case .success: "ok" case .failure(let error): error.reason }
                outcomes[outcome, default: 0] += 1
            }
        }
        // The mix really covered accepted datagrams, both keys' and bad tags, and the framing errors.
        for reason in ["ok", "bad_tag", "missing_tag", "truncated_tag"] {
            XCTAssertGreaterThan(outcomes[reason] ?? 0, 20, "\(reason): \(outcomes)")
        }
    }

    func testEncoderRefusesOutOfBoundsFields() {
        var message = Samples.message(.candidacy(Candidacy(term: 1, topic: String(repeating: "t", count: 65))))
        XCTAssertThrowsError(try Codec().encode(message)) { XCTAssertEqual(($0 as? WireError)?.reason, "bad_length") }
        message = Samples.message(.page(RevokedPage(requestID: 1, index: 0, last: true,
            entries: (0..<40).map { RevokedEntry(id: String(repeating: "x", count: 100) + "\($0)", revokedAtMillis: 1) })))
        XCTAssertThrowsError(try Codec().encode(message)) { XCTAssertEqual(($0 as? WireError)?.reason, "oversized") }
    }

    func testFuzzCorpusDecodesWithoutTrapping() throws {
        // The libFuzzer seed corpus (Tests/Fuzz/corpus) and every crash it ever found.
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz/corpus")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        XCTAssertGreaterThan(files.count, 10)
        for file in files {
            let bytes = [UInt8](try Data(contentsOf: folder.appendingPathComponent(file)))
            _ = try? Codec().decode(bytes)
            _ = try? Codec(keys: [Samples.key]).decode(bytes)
        }
    }
}

import Foundation
