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
        let address: EntryAddress = rng.next() % 4 == 0
            ? .ipv6(high: rng.next(), low: rng.next()) : .ipv4(UInt32.random(in: 0...UInt32.max, using: &rng))
        return MemberEntry(id: NodeID.random(using: &rng), incarnation: UInt32.random(in: 0...UInt32.max, using: &rng),
            status: MemberStatus.allCases.randomElement(using: &rng)!, address: address, port: UInt16.random(in: 0...UInt16.max, using: &rng),
            name: randomString(1...12))
    }

    func randomPing() -> Ping {
        Ping(probeID: UInt32.random(in: 0...UInt32.max, using: &rng), target: NodeID.random(using: &rng),
            revoked: SetDigest(count: UInt32.random(in: 0...99, using: &rng), hash: rng.next()),
            piggyback: (0..<Int(rng.next() % 9)).map { _ in randomEntry() })
    }

    func randomPayload() -> Payload {
        let digest = SetDigest(count: UInt32.random(in: 0...99, using: &rng), hash: rng.next())
        let lowest = UInt8.random(in: 1...3, using: &rng)
        let versions = VersionRange(lowest: lowest, highest: UInt8.random(in: lowest...UInt8.max, using: &rng))
        switch rng.next() % 20 {
        case 0: return .announce(Announcement(versions: versions, memberCount: UInt16.random(in: 0...UInt16.max, using: &rng), revoked: digest))
        case 1: return .ping(randomPing())
        case 2: return .goodbye
        case 3: return .pingRequest(Probe(probeID: UInt32.random(in: 0...UInt32.max, using: &rng), target: NodeID.random(using: &rng)))
        case 4: return .ack(randomPing())
        case 5: return .members(MembersPage(replyWanted: rng.next() % 2 == 0, page: 0, pageCount: 2, entries: (0..<5).map { _ in randomEntry() }))
        case 6: return .hello(Hello(versions: versions, requestID: 5, revoked: digest))
        case 7: return .helloReply(HelloReply(versions: versions, requestID: 5, memberCount: 4, revoked: digest, members: [randomEntry()]))
        case 8: return .pageRequest(PageRequest(requestID: 1, bucketMask: rng.next(), maxPages: 3, cursor: randomString(0...20), until: randomString(0...20)))
        case 9: return .page(RevokedPage(requestID: 2, index: 1, last: false, entries: (0..<10).map { _ in RevokedEntry(id: randomString(1...40), revokedAtMillis: rng.next() >> 20) }))
        case 10: return .digestRequest(requestID: 3)
        case 11: return .digestReply(DigestReply(requestID: 3, buckets: (0..<64).map { _ in digest }))
        case 12: return .candidacy(Candidacy(term: rng.next() >> 12, topic: randomString(1...30)))
        case 13: return .leader(LeaderAnnouncement(term: 2, leader: NodeID.random(using: &rng), leaderStamp: 9, topic: randomString(1...20), leaderName: randomString(1...20)))
        case 14: return .vote(Vote(term: 2, candidate: NodeID.random(using: &rng), candidateStamp: 3, topic: randomString(1...10)))
        case 15: return .controlRequest(ControlRequest(requestID: 9, command: randomString(1...10), target: randomString(0...10), args: (0..<3).map { _ in randomString(0...30) }))
        case 16: return .nack(Probe(probeID: UInt32.random(in: 0...UInt32.max, using: &rng), target: NodeID.random(using: &rng)))
        case 17: return .change((0..<Int(rng.next() % 8 + 1)).map { _ in randomEntry() })
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
        let bytes = try codec.encode(Samples.message(Samples.payload("ping")))
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

    // MARK: Version 2 payloads (issue 16)

    func entries(_ count: Int) -> [MemberEntry] {
        // Names of 8 bytes: every entry takes 25 + 4 + 8 = 37 bytes.
        (0..<count).map { MemberEntry(id: NodeID(high: 1, low: UInt64($0)), incarnation: 1, status: .alive,
            endpoint: Endpoint(address: 0x7F00_0001, port: 7), name: "member-\($0 % 10)") }
    }

    /// Issue 16: the piggyback count is one byte, but the datagram limit binds long before it.
    /// 255 entries is refused as oversized (never cut short), 256 cannot be counted; the most
    /// that fit are exactly what 1400 bytes leave after the header and the 33 fixed bytes.
    func testPiggybackBeyondTheDatagramIsRefused() throws {
        func reason(_ payload: Payload) -> String? {
            do { _ = try Codec().encode(Samples.message(payload)); return nil } catch { return error.reason }
        }
        // Samples' header is 64 bytes, then payload_len 2 and the PING's fixed 33.
        let fitting = (Limits.maxDatagram - 64 - 2 - 33) / 37
        for make in [{ Payload.ping(Ping(probeID: 1, target: Samples.other, revoked: .empty, piggyback: $0)) },
                     { Payload.ack(Ping(probeID: 1, target: Samples.other, revoked: .empty, piggyback: $0)) }] as [([MemberEntry]) -> Payload] {
            XCTAssertEqual(reason(make(entries(255))), "oversized")
            XCTAssertEqual(reason(make(entries(256))), "bad_length")
            XCTAssertEqual(reason(make(entries(fitting + 1))), "oversized")
            let bytes = try Codec().encode(Samples.message(make(entries(fitting))))
            XCTAssertLessThanOrEqual(bytes.count, Limits.maxDatagram)
            XCTAssertGreaterThan(bytes.count + 37, Limits.maxDatagram)
            XCTAssertEqual(try Codec().decode(bytes).payload, make(entries(fitting)))
        }
        XCTAssertEqual(reason(.change(entries(255))), "oversized")
        // With a key the tag's 32 bytes count too.
        let keyed = Codec(keys: [Samples.key])
        XCTAssertThrowsError(try keyed.encode(Samples.message(.ping(Ping(probeID: 1, target: Samples.other, revoked: .empty,
            piggyback: entries(fitting)))))) { XCTAssertEqual(($0 as? WireError)?.reason, "oversized") }
        // A receiver never sees one: anything over 1400 bytes is dropped first (§5.1 check 1).
        var big = try Codec().encode(Samples.message(.ping(Ping(probeID: 1, target: Samples.other, revoked: .empty, piggyback: entries(fitting)))))
        big += [UInt8](repeating: 0, count: Limits.maxDatagram + 1 - big.count)
        XCTAssertEqual(try? Codec().decode(big), nil)
    }

    /// Issue 16: the encoder refuses what a decoder would refuse: an empty CHANGE, a version
    /// range upside down or starting at 0.
    func testEncoderRefusesEmptyChangeAndBadVersionRanges() {
        func error(_ payload: Payload) -> WireError? {
            do { _ = try Codec().encode(Samples.message(payload)); return nil } catch { return error }
        }
        XCTAssertEqual(error(.change([])), .invalidValue(field: "entry_count"))
        for range in [VersionRange(lowest: 0, highest: 2), VersionRange(lowest: 3, highest: 2)] {
            XCTAssertEqual(error(.announce(Announcement(versions: range, memberCount: 1, revoked: .empty))), .invalidValue(field: "versions"))
            XCTAssertEqual(error(.hello(Hello(versions: range, requestID: 1, revoked: .empty))), .invalidValue(field: "versions"))
            XCTAssertEqual(error(.helloReply(HelloReply(versions: range, requestID: 1, memberCount: 1, revoked: .empty, members: []))),
                .invalidValue(field: "versions"))
        }
        XCTAssertNil(error(.announce(Announcement(versions: VersionRange(lowest: 2, highest: 255), memberCount: 0, revoked: .empty))))
    }

    /// Issue 16: an ACK names the member probed, so a relayed ACK (sent by the helper) keeps
    /// the target and the requester's probe id; PING and ACK share one layout but not a type.
    func testRelayedAckKeepsItsTargetAndPingAndAckDiffer() throws {
        let helper = NodeID(high: 0xAB, low: 0xCD)
        var header = Samples.header()
        header.sender = helper
        let relayed = Message(header: header, payload: .ack(Ping(probeID: 0x8000_0001, target: Samples.other, revoked: Samples.digest,
            piggyback: [Samples.entry, Samples.ipv6Entry])))
        let decoded = try Codec().decode(try Codec().encode(relayed))
        XCTAssertEqual(decoded, relayed)
        guard case .ack(let ack) = decoded.payload else { return XCTFail("not an ACK: \(decoded.payload)") }
        XCTAssertEqual(ack.target, Samples.other)
        XCTAssertEqual(decoded.header.sender, helper)
        let asPing = try Codec().encode(Message(header: header, payload: .ping(ack)))
        let asAck = try Codec().encode(relayed)
        XCTAssertEqual(asPing[5], MessageType.ping.rawValue)
        XCTAssertEqual(asAck[5], MessageType.ack.rawValue)
        XCTAssertEqual(Array(asPing[6...]), Array(asAck[6...]), "only the type byte differs")
    }

    /// Issue 16: an IPv6 entry round-trips whole, and an IPv4 entry with the all-zero address
    /// stands for the datagram's source; an IPv6 member gives no IPv4 endpoint (issue 19: one
    /// cluster is one family, so an IPv4 source skips it).
    func testEntryAddresses() throws {
        let change = Payload.change([Samples.ipv6Entry, MemberEntry(id: Samples.sender, incarnation: 1, status: .alive,
            endpoint: Endpoint(address: 0, port: 9), name: "self")])
        XCTAssertEqual(try Codec().decode(Samples.encode(change)).payload, change)
        guard case .change(let list) = change else { return }
        XCTAssertNil(list[0].endpoint(source: IPAddress(ipv4: 0x7F00_0001)))
        XCTAssertEqual(list[1].endpoint(source: IPAddress(ipv4: 0x7F00_0002)), Endpoint(address: 0x7F00_0002, port: 9))
        XCTAssertEqual(Samples.entry.endpoint(source: IPAddress(ipv4: 0x0A00_0001)), Endpoint(address: 0x7F00_0001, port: 40500))
        XCTAssertEqual(list.map(\.address.family), [6, 4])
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
