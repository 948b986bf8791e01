@testable import StarlingCore
import XCTest

/// Member tags (issue 18, Protocol.md §3.4.1): limits, wire form, which datagrams carry them,
/// merge by incarnation, a change of one's own tags, and control targets that select on them.
final class MemberTagsTests: XCTestCase {
    let ms = PeerHarness.ms
    let web = try! MemberTags(["role": "web", "zone": "a"])

    // MARK: Values and limits

    func testLimitsAndErrorsAreByBytes() throws {
        XCTAssertEqual(Samples.largestTags.encodedSize, 512)
        XCTAssertThrowsError(try MemberTags(["a": String(repeating: "v", count: 255), "b": String(repeating: "w", count: 249), "c": ""])) {
            XCTAssertEqual($0 as? MemberTagsError, .tooLarge(bytes: 513))
        }
        XCTAssertThrowsError(try MemberTags(["": "x"])) { XCTAssertEqual($0 as? MemberTagsError, .invalidKey("")) }
        for key in ["a=b", "a,b", "a+b", "a*", "a?", "tab\t", String(repeating: "k", count: 65)] {
            XCTAssertThrowsError(try MemberTags([key: "x"]), key)
        }
        XCTAssertThrowsError(try MemberTags(["k": "line\nbreak"])) { XCTAssertEqual($0 as? MemberTagsError, .invalidValue(key: "k")) }
        XCTAssertThrowsError(try MemberTags(["k": String(repeating: "v", count: 256)]))
        XCTAssertNoThrow(try MemberTags(["k": ""]), "an empty value is a value")
        // "é" precomposed and decomposed are one Swift String but two keys on the wire.
        let tags = try MemberTags(pairs: [("\u{E9}", "nfc"), ("e\u{301}", "nfd")])
        XCTAssertEqual(tags.pairs.count, 2)
        XCTAssertEqual(tags["e\u{301}"], "nfd")
        XCTAssertEqual(tags["\u{E9}"], "nfc")
        XCTAssertEqual(tags.pairs.map(\.key), ["e\u{301}", "\u{E9}"], "byte order: 0x65 before 0xC3")
    }

    func testParsingFlagsSplitsAtTheFirstEquals() throws {
        let tags = try MemberTags(parsing: ["url=http://x/?a=b", "role=web", "empty="])
        XCTAssertEqual(tags["url"], "http://x/?a=b")
        XCTAssertEqual(tags[""], nil)
        XCTAssertEqual(tags["empty"], "")
        XCTAssertEqual(tags.description, "empty=,role=web,url=http://x/?a=b")
        XCTAssertThrowsError(try MemberTags(parsing: ["noequals"])) { XCTAssertEqual($0 as? MemberTagsError, .notKeyValue("noequals")) }
        XCTAssertThrowsError(try MemberTags(parsing: ["a=1", "a=2"])) { XCTAssertEqual($0 as? MemberTagsError, .duplicateKey("a")) }
    }

    func testJSONFormIsLenientOnlyInRefusing() throws {
        XCTAssertEqual(MemberTags(json: web.json), web)
        XCTAssertEqual(MemberTags(json: nil), .empty)
        XCTAssertEqual(MemberTags(json: .object([("a=b", .string("x"))])), .empty, "an invalid key from a reply is no tags")
        XCTAssertEqual(MemberTags(json: .object([("a", .number(1))])), .empty)
    }

    // MARK: Wire form

    func testWireFormSplitsAt255BytesAndRoundTrips() throws {
        XCTAssertEqual(MemberTags.empty.extensions, [])
        XCTAssertEqual(web.extensions, [Extension(type: 0x01, value: [4] + Array("role".utf8) + [3] + Array("web".utf8) + [4] + Array("zone".utf8) + [1, 0x61])])
        let largest = Samples.largestTags.extensions
        XCTAssertEqual(largest.map(\.value.count), [255, 255, 2])
        XCTAssertEqual(try MemberTags.decode(largest), Samples.largestTags)
        XCTAssertEqual(Samples.largestTags.extensionBytes, 2 + 512 + 3 * 2)
        let message = Message(header: Samples.header(), payload: Samples.payload("ping"), extensions: largest)
        let bytes = try Codec(keys: [Samples.key]).encode(message)
        let decoded = try Codec(keys: [Samples.key]).decode(bytes)
        XCTAssertEqual(decoded.senderTags, Samples.largestTags)
        XCTAssertEqual(Message(header: Samples.header(), payload: Samples.payload("ping")).senderTags, .empty, "a carrier without tags: none")
        XCTAssertNil(Message(header: Samples.header(), payload: .goodbye, extensions: web.extensions).senderTags, "GOODBYE does not carry tags")
    }

    // MARK: Sending

    func testOwnTagsRideOnTheCarriersOnly() throws {
        var h = PeerHarness { $0.tags = self.web }
        h.start()
        _ = h.join(3)
        h.advance(1_000 * ms)
        h.receive(.controlRequest(ControlRequest(requestID: 9, command: "ping", target: "", args: [])), from: NodeID(high: 0xC1, low: 1), name: "cli", port: 9500)
        var seen: Set<String> = []
        for (message, _) in h.sent {
            let type = message.payload.type
            seen.insert(type.name)
            XCTAssertEqual(message.extensions.isEmpty, !type.carriesTags, "\(type.name)")
            if type.carriesTags { XCTAssertEqual(message.senderTags, web) }
        }
        XCTAssertTrue(seen.isSuperset(of: ["ANNOUNCE", "PING", "HELLO", "CONTROL_REPLY"]), "\(seen)")
    }

    /// With 512 bytes of tags, the longest cluster and node names and a key, PINGs, ACKs and
    /// MEMBERS pages still fit 1400 bytes: piggyback and pages are sized with the tags counted.
    func testTheLargestTagsLeaveEveryDatagramEncodable() throws {
        let name = String(repeating: "n", count: 64)
        var h = PeerHarness(name: name) {
            $0.tags = Samples.largestTags
            $0.cluster = String(repeating: "c", count: 32)
            $0.keys = [Samples.key]
        }
        h.start()
        for index in 0..<40 {
            let id = NodeID(high: 0xA00, low: UInt64(index))
            let entry = MemberEntry(id: id, incarnation: 1, status: .alive, endpoint: Endpoint(address: PeerHarness.loopback, port: UInt16(9100 + index)),
                name: String(repeating: "m", count: 60) + String(index))
            h.ping(from: id, name: entry.name, gossip: [entry], port: UInt16(9100 + index))
        }
        h.receive(.members(MembersPage(replyWanted: true, page: 0, pageCount: 1, entries: [])), from: NodeID(high: 0xA00, low: 0), name: String(repeating: "m", count: 60) + "0", port: 9100)
        h.advance(2_000 * ms)
        let members = h.sent.filter { $0.0.payload.type == .members }
        XCTAssertGreaterThan(members.count, 1, "the view needs several pages")
        XCTAssertTrue(h.sent.allSatisfy { $0.0.payload.type.carriesTags == ($0.0.senderTags == Samples.largestTags) })
        XCTAssertTrue(h.peer.counters.drops.keys.allSatisfy { !$0.hasPrefix("encode_") }, "\(h.peer.counters.drops)")
    }

    func testChangingOwnTagsRaisesTheIncarnationAndMulticastsAtOnceAndAgain() throws {
        var h = PeerHarness()
        h.start()
        _ = h.join(2)
        h.clearSent()
        h.events.removeAll()
        h.record(h.peer.setTags(web, now: h.time))
        XCTAssertEqual(h.peer.incarnation, 1)
        XCTAssertEqual(h.changes.count, 1)
        let change = try XCTUnwrap(h.sent.first { $0.0.payload.type == .change })
        XCTAssertEqual(change.1, .group)
        XCTAssertEqual(change.0.senderTags, web)
        XCTAssertEqual(change.0.header.incarnation, 1)
        XCTAssertEqual(h.changes.first?.0.first?.incarnation, 1)
        XCTAssertEqual(h.events, [.tagsChanged(name: "me", id: h.peer.config.id, tags: web)])
        // Before any path is measured: two quick copies 10 ms apart (10 % loss assumed), and
        // one more a period later, as a refutation is.
        var times: [UInt64] = []
        let start = h.now
        for _ in 0..<200 {
            h.clearSent()
            h.advance(ms)
            if !h.changes.isEmpty { times.append((h.now - start) / ms) }
        }
        XCTAssertEqual(times, [10, 20, 200])
        XCTAssertTrue(h.peer.setTags(web, now: h.time).isEmpty, "the same tags: nothing")
        h.record(h.peer.setTags(.empty, now: h.time))
        XCTAssertEqual(h.peer.incarnation, 2)
        XCTAssertEqual(h.sent.last?.0.extensions, [], "no tags: no entries")
    }

    /// The quick copies follow the measured one-way loss (pⁿ ≤ 10⁻⁵), within 3 … 8, spaced by
    /// the paths' timeout within 1 … 50 ms.
    func testQuickCopiesFollowTheMeasuredLoss() throws {
        func copies(loss: Double, timeout: UInt64) -> (count: Int, gaps: Set<UInt64>) {
            var h = PeerHarness()
            h.start()
            _ = h.join(1)
            var path = PathEstimate()
            path.roundTrip.add(timeout / 3)
            path.probes = 1_000_000
            path.answered = UInt32((1 - loss) * (1 - loss) * 1_000_000)
            h.peer.membership.pathSummary = PathSummary([path])
            h.clearSent()
            h.record(h.peer.setTags(web, now: h.time))
            var times: [UInt64] = [h.now]
            let start = h.now
            while h.now - start < 150 * ms {
                h.clearSent()
                h.advance(ms / 2)
                if !h.changes.isEmpty { times.append(h.now) }
            }
            return (times.count, Set(zip(times.dropFirst(), times).map { ($0 - $1) / (ms / 2) }))
        }
        XCTAssertEqual(copies(loss: 0, timeout: 3 * ms).count, 3, "never fewer than 3")
        XCTAssertEqual(copies(loss: 0.1, timeout: 3 * ms).count, 5, "0.1⁵ = 10⁻⁵")
        XCTAssertEqual(copies(loss: 0.1, timeout: 3 * ms).gaps, [6], "3 ms apart (6 half-milliseconds)")
        XCTAssertEqual(copies(loss: 0.3, timeout: 3 * ms).count, 8, "at most 8")
        XCTAssertEqual(copies(loss: 0.1, timeout: 30 * ms / 100).gaps, [2], "at least 1 ms apart")
    }

    // MARK: Receiving

    func testTagsMergeByIncarnationFromTheMembersOwnCarriers() throws {
        // Published at once (§6.1.8): every change of its tags is an event.
        var h = PeerHarness { $0.settleInterval = 0 }
        h.start()
        let id = NodeID(high: 0x77, low: 1)
        func tags() -> MemberTags { h.peer.tags(of: id) }
        func tagEvents() -> Int { h.events.filter { if case .tagsChanged = $0 { true } else { false } }.count }
        let ping = Payload.ping(Ping(probeID: 1, target: h.peer.config.id, revoked: h.peer.revoked.digest, piggyback: []))
        h.receive(ping, from: id, name: "w", incarnation: 3, extensions: web.extensions)
        XCTAssertEqual(tags(), web)
        XCTAssertEqual(h.events.first { if case .joined = $0 { true } else { false } },
            .joined(name: "w", id: id, endpoint: Endpoint(address: PeerHarness.loopback, port: 9100), tags: web),
            "a member heard first-hand joins with its tags")
        XCTAssertEqual(tagEvents(), 0, "its first tags are in `joined`")
        h.receive(ping, from: id, name: "w", incarnation: 3, extensions: web.extensions)
        XCTAssertEqual(tagEvents(), 0, "the same tags again: no event")
        let old = try MemberTags(["role": "old"])
        h.receive(ping, from: id, name: "w", incarnation: 2, extensions: old.extensions)
        XCTAssertEqual(tags(), web, "a datagram from before the change does not bring old tags back")
        h.receive(.hello(Hello(requestID: 5, revoked: .empty)), from: id, name: "w", incarnation: 4)
        XCTAssertEqual(tags(), web, "HELLO does not carry tags: its silence says nothing")
        h.receive(.announce(Announcement(memberCount: 2, revoked: .empty)), from: id, name: "w", incarnation: 4)
        XCTAssertEqual(tags(), .empty, "a carrier without tags at a newer incarnation: none")
        XCTAssertEqual(tagEvents(), 1)
        let row = try XCTUnwrap(h.peer.memberRows(now: h.time).first { $0["id"]?.stringValue == id.description })
        XCTAssertNil(row["tags"])
        h.receive(ping, from: id, name: "w", incarnation: 5, extensions: web.extensions)
        let tagged = try XCTUnwrap(h.peer.memberRows(now: h.time).first { $0["id"]?.stringValue == id.description })
        XCTAssertEqual(tagged["tags"], web.json)
    }

    func testTagsOfAMemberGoWithItsEntry() throws {
        var h = PeerHarness { $0.reapAfter = 1_000 * self.ms }
        h.start()
        let ids = h.join(2)
        let ping = Payload.ping(Ping(probeID: 1, target: h.peer.config.id, revoked: h.peer.revoked.digest, piggyback: []))
        h.receive(ping, from: ids[0], name: "f0", port: h.port(of: ids[0]), extensions: web.extensions)
        XCTAssertEqual(h.peer.membership.tagRecords.count, 1)
        h.receive(.goodbye, from: ids[0], name: "f0", port: h.port(of: ids[0]))
        h.advance(1_500 * ms)
        XCTAssertNil(h.peer.members[ids[0]], "reaped")
        XCTAssertTrue(h.peer.membership.tagRecords.isEmpty, "and its tags with it")
    }

    // MARK: Targets

    func testTargetsSelectByTagsNamesAndBoth() throws {
        let tags = try MemberTags(["role": "web", "zone": "eu-1", "empty": ""])
        let cases: [(String, Bool)] = [
            ("role=web", true), ("role=db", false), ("role=w*", true), ("zone=eu-?", true), ("missing=*", false),
            ("empty=", true), ("empty=*", true), ("role=", false), ("role=web+zone=eu-1", true), ("role=web+zone=us-*", false),
            ("web-1+role=web", true), ("db-*+role=web", false), ("db-*,role=web", true), ("db-*,role=db", false),
            ("web-*+role=web+zone=eu*", true), ("+role=web", false), ("role=web+", false),
        ]
        for (target, expected) in cases {
            XCTAssertEqual(Glob.matchesTarget(target, "web-1", tags: tags), expected, target)
        }
        XCTAssertFalse(Glob.isLiteral("role=web"))
        XCTAssertFalse(Glob.isLiteral("a+b"))
        XCTAssertTrue(Glob.isLiteral("web-1"))
    }

    func testAnAgentAnswersATagTargetByItsCurrentTags() throws {
        var h = PeerHarness(name: "web-1") { $0.tags = self.web }
        h.start()
        h.clearSent()
        let cli = NodeID(high: 0xC1, low: 1)
        h.receive(.controlRequest(ControlRequest(requestID: 1, command: "ping", target: "role=db", args: [])), from: cli, name: "cli", port: 9500)
        XCTAssertTrue(h.sent.isEmpty)
        h.receive(.controlRequest(ControlRequest(requestID: 2, command: "ping", target: "role=web+zone=a", args: [])), from: cli, name: "cli", port: 9500)
        XCTAssertEqual(h.sent.count, 1)
        h.record(h.peer.setTags(try MemberTags(["role": "db"]), now: h.time))
        h.clearSent()
        h.receive(.controlRequest(ControlRequest(requestID: 3, command: "ping", target: "role=db", args: [])), from: cli, name: "cli", port: 9500)
        XCTAssertEqual(h.sent.map(\.0.payload.type), [.controlReply])
    }
}
