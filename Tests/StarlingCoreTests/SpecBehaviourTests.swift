@testable import StarlingCore
import XCTest

/// Issue 14, "Spec clarity": the behaviour Protocol.md now states exactly — control commands
/// (§3.5.2), gossip and merge (§6.1.3), HELLO resends (§6.3.1), page re-requests (§6.3.2), the
/// alive view (§6.4) and the replay window (§7.3).
///
/// Cases the code does not follow yet skip while it gives the old answer, naming the fix.
final class SpecBehaviourTests: XCTestCase {
    let ms = PeerHarness.ms
    let a = NodeID(high: 10, low: 1)
    let b = NodeID(high: 11, low: 1)
    let c = NodeID(high: 12, low: 1)
    let server = NodeID(high: 13, low: 1)

    /// Sends `command` to the harness peer from a requester that is not a member (as the CLI
    /// does) and returns the status and the reassembled body of its reply.
    func ask(_ h: inout PeerHarness, _ command: String, _ args: [String] = []) -> (ControlStatus, JSON)? {
        var requester = Peer(config: PeerConfig(name: "cli", id: NodeID(high: 99, low: UInt64(h.sent.count))))
        let (id, actions) = requester.request(command, args: args, to: Endpoint(address: 0x7F00_0001, port: 9000), now: h.time)
        let before = h.sent.count
        for case .send(let bytes, _) in actions {
            h.record(h.peer.onDatagram(bytes, from: Endpoint(address: 0x7F00_0001, port: 0), now: h.time))
        }
        let pages = pages(h.sent[before...].map(\.0.payload), requestID: id)
        guard let first = pages.first else { return nil }
        let body = pages.flatMap(\.body)
        guard let text = String(validating: body, as: UTF8.self), let json = try? JSON.parse(text) else { return nil }
        return (first.status, json)
    }

    func pages(_ payloads: [Payload], requestID: UInt32) -> [ControlReply] {
        payloads.compactMap { if case .controlReply(let reply) = $0, reply.requestID == requestID { reply } else { nil } }
            .sorted { $0.page < $1.page }
    }

    // MARK: §3.5.2 commands

    func testRevokedListsTheFirstLimitIdsInByteOrder() throws {
        var h = PeerHarness()
        h.start()
        XCTAssertEqual(ask(&h, "revoke", ["b", "a", "é", "Z"])?.1["stored"]?.numberValue, 4)
        let (status, body) = try XCTUnwrap(ask(&h, "revoked", ["2"]))
        XCTAssertEqual(status, .ok)
        XCTAssertEqual(body["ids"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, ["Z", "a"], "UTF-8 byte order: 0x5A < 0x61 < 0x62 < 0xC3")
        XCTAssertEqual(body["count"]?.numberValue, 4, "count is the whole set, not the ids listed")
    }

    func testRevokeWithoutValidIdsStoresNothing() throws {
        var h = PeerHarness()
        h.start()
        XCTAssertEqual(ask(&h, "revoke")?.0, .error)
        XCTAssertEqual(ask(&h, "revoke", ["ok", ""])?.0, .error)
        XCTAssertEqual(h.peer.revoked.count, 0)
    }

    func testStoredCountsDistinctIds() throws {
        var h = PeerHarness()
        h.start()
        _ = ask(&h, "revoke", ["held"])
        let stored = try XCTUnwrap(ask(&h, "revoke", ["held", "new", "new"])?.1["stored"]?.numberValue)
        XCTAssertEqual(stored, 2)
    }

    func testLeaderWithoutTopicListsOneObjectPerTopic() throws {
        var h = PeerHarness()
        h.start()
        h.record(h.peer.elect("b", now: h.time))
        h.record(h.peer.elect("a", now: h.time))
        let (_, all) = try XCTUnwrap(ask(&h, "leader"))
        XCTAssertEqual(all["name"]?.stringValue, "me")
        let leaders = try XCTUnwrap(all["leaders"]?.arrayValue)
        XCTAssertEqual(leaders.compactMap { $0["topic"]?.stringValue }, ["a", "b"])
        let (_, one) = try XCTUnwrap(ask(&h, "leader", ["a"]))
        XCTAssertEqual(leaders.first, one, "each element is what `leader TOPIC` returns")
        XCTAssertEqual(one["leader"]?.stringValue, "me")
        XCTAssertEqual(one["term"]?.numberValue, 1)
        let (_, unknown) = try XCTUnwrap(ask(&h, "leader", ["never"]))
        XCTAssertEqual(unknown["leader"], .null)
        XCTAssertEqual(unknown["term"]?.numberValue, 0)
    }

    func testReplyPagesMayCutAUTF8Sequence() throws {
        var h = PeerHarness()
        h.start()
        for round in 0..<5 {
            let ids = (0..<8).map { "\(round)\($0)" + String(repeating: "✓", count: 40) }
            XCTAssertEqual(ask(&h, "revoke", ids)?.0, .ok)
        }
        h.clearSent()
        let (_, body) = try XCTUnwrap(ask(&h, "revoked"), "the reassembled body is one UTF-8 JSON document")
        XCTAssertEqual(body["ids"]?.arrayValue?.count, 40)
        let replies = h.sentPayloads().compactMap { if case .controlReply(let reply) = $0 { reply } else { nil } }
        XCTAssertGreaterThan(replies.count, 1)
        XCTAssertTrue(replies.contains { String(validating: $0.body, as: UTF8.self) == nil }, "some page ends inside a sequence")
    }

    func testRequesterDecodesOnlyTheReassembledBody() {
        var h = PeerHarness()
        let (id, actions) = h.peer.request("ping", options: RequestOptions(expected: 1), now: h.time)
        h.record(actions)
        let bytes = Array(#"{"x":"é"}"#.utf8)
        let cut = bytes.firstIndex(of: 0xC3)! + 1
        for (page, body) in [(UInt16(1), Array(bytes[cut...])), (0, Array(bytes[..<cut]))] {
            h.receive(.controlReply(ControlReply(requestID: id, status: .ok, memberCount: 1, page: page, pageCount: 2, body: body)), from: a, name: "a")
        }
        let bodies = h.events.compactMap { if case .reply(_, _, _, _, let body) = $0 { body } else { nil } }
        XCTAssertEqual(bodies, [#"{"x":"é"}"#])
    }

    func testArgumentsAreSplitIntoRequestsThatFit() {
        var requester = Peer(config: PeerConfig(name: "cli", id: a))
        let args = (0..<64).map { String(repeating: Character(String($0 % 10)), count: 1_024) }
        let batches = requester.requestBatches(args, command: "revoke")
        XCTAssertGreaterThan(batches.count, 1, "64 arguments of 1024 bytes never fit one datagram")
        XCTAssertEqual(batches.flatMap { $0 }, args, "whole arguments, in order")
        for batch in batches {
            let (_, actions) = requester.request("revoke", args: batch, now: Now(nanos: 0, wallMillis: 1_800_000_000_000))
            for case .send(let bytes, _) in actions { XCTAssertLessThanOrEqual(bytes.count, Limits.maxDatagram) }
        }
        XCTAssertTrue(requester.counters.drops.keys.allSatisfy { !$0.hasPrefix("encode_") }, "\(requester.counters.drops)")
    }

    func testTargetPatterns() throws {
        XCTAssertTrue(Glob.matchesTarget("", "any"))
        XCTAssertTrue(Glob.matchesTarget("[w]", "[w]"), "brackets are ordinary characters")
        XCTAssertFalse(Glob.matchesTarget("[w]", "w"))
        XCTAssertTrue(Glob.matchesTarget("x,w-?", "w-1"), "commas separate patterns")
        XCTAssertFalse(Glob.matchesTarget("x, w-1", "w-1"), "nothing is trimmed")
        XCTAssertTrue(Glob.matchesTarget("x, w-1", " w-1"), "a space is an ordinary character")
        XCTAssertFalse(Glob.matchesTarget(",", "w"), "empty patterns match no name")
        XCTAssertTrue(Glob.matchesTarget("w?", "wé"), "? is one code point, not one byte")
        XCTAssertFalse(Glob.matchesTarget("wé", "we\u{301}"), "no normalisation")
        XCTAssertTrue(Glob.matchesTarget("w\\*", "w\\x"), "no escapes: a backslash is itself")
        XCTAssertTrue(Glob.isLiteral("w-1") && !Glob.isLiteral("w-*") && !Glob.isLiteral("a,b") && !Glob.isLiteral(""))
    }

    func testStarIsAlwaysAWildcard() throws {
        XCTAssertTrue(Glob.matches("*a", "*ba"))
    }

    func testTargetsAreSplitAtEveryCommaByte() throws {
        XCTAssertTrue(Glob.matchesTarget("x,\u{301}w", "\u{301}w"))
        XCTAssertFalse(Glob.isLiteral("w*\u{301}"), "a `*` followed by a combining mark is still a wildcard")
    }

    func testWatchEventNamesAndFields() throws {
        let id = NodeID(high: 1, low: 2)
        let cases: [(PeerEvent, String, [String])] = [
            (.joined(name: "n", id: id, endpoint: Endpoint(address: 0x7F00_0001, port: 5)), "joined", ["name", "id", "address"]),
            (.statusChanged(name: "n", id: id, from: .alive, to: .suspect), "suspect", ["name", "id", "from"]),
            (.statusChanged(name: "n", id: id, from: .suspect, to: .alive), "alive", ["name", "id", "from"]),
            (.statusChanged(name: "n", id: id, from: .suspect, to: .dead), "dead", ["name", "id", "from"]),
            (.statusChanged(name: "n", id: id, from: .alive, to: .left), "left", ["name", "id", "from"]),
            (.refuted(incarnation: 3), "refuted", ["incarnation"]),
            (.replaced(name: "n", old: id, new: id), "replaced", ["name", "old", "new"]),
            (.duplicateName(name: "n", ids: [id]), "duplicate_name", ["name"]),
            (.searching, "searching", []),
            (.synced(nodes: 1, clock: 2, received: 3, complete: true), "synced", ["nodes", "clock", "received", "complete"]),
            (.alone, "alone", []),
            (.revoked(ids: ["x"], by: "n"), "revoked", ["ids", "by"]),
            (.leaderChanged(topic: "t", leader: nil, leaderID: nil, term: 2), "leader", ["topic", "leader", "term"]),
            (.noQuorum(topic: "t", term: 2, have: 1, need: 2), "no_quorum", ["topic", "term", "have", "need"]),
            (.stalled(millis: 9), "stalled", ["millis"]),
        ]
        for (event, name, fields) in cases {
            guard case .object(let pairs) = try XCTUnwrap(Peer.eventJSON(event, source: "me", wallMillis: 7)) else { return XCTFail() }
            XCTAssertEqual(pairs.map(\.0), ["time_ms", "source", "event"] + fields, name)
            XCTAssertEqual(pairs[2].1, .string(name))
        }
        let ids = Peer.eventJSON(.joined(name: "n", id: id, endpoint: Endpoint(address: 0x7F00_0001, port: 5)), source: "me", wallMillis: 7)
        XCTAssertEqual(ids?["id"]?.stringValue, "00000000000000010000000000000002")
        XCTAssertEqual(ids?["address"]?.stringValue, "127.0.0.1:5")
        XCTAssertNil(Peer.eventJSON(.reaped(name: "n", id: id), source: "me", wallMillis: 7), "reaping is not an event")
        XCTAssertNil(Peer.eventJSON(.dropped(reason: "x", from: Endpoint(address: 1, port: 1)), source: "me", wallMillis: 7))
    }

    // MARK: §6.1.3 gossip and merge, §6.4 alive view

    /// Issue 16: each change rides on λ · ⌈log10(n + 1)⌉ PINGs and ACKs, then is dropped
    /// (was 3 · (1 + log2 N) heartbeats in version 1).
    func testEachChangeIsPiggybackedLambdaLogTimes() {
        var h = PeerHarness()
        h.start()
        let fakes = h.join(9)  // n = 10 with this peer: 3 · ⌈log10 11⌉ = 6 sends each
        h.advance(12_000 * ms, silent: [])
        var sent: [NodeID: Int] = [:]
        for carrier in h.pings + h.acks.map(\.0) { for entry in carrier.piggyback { sent[entry.id, default: 0] += 1 } }
        // Each join happened with fewer members in the view: f0 joined a view of 2, f9 of 10.
        for (index, id) in fakes.enumerated() {
            XCTAssertEqual(sent[id], Dissemination.transmissions(members: index + 2), "f\(index)")
        }
        XCTAssertTrue(h.peer.dissemination.isEmpty, "then dropped")
    }

    func testMergeOfAnUnknownMember() {
        var h = PeerHarness()
        h.start()
        let entry = { (id: NodeID, status: MemberStatus) in
            MemberEntry(id: id, incarnation: 2, status: status, endpoint: Endpoint(address: 0, port: 7), name: "m\(id.high)")
        }
        h.ping(from: a, name: "a", gossip: [entry(b, .suspect), entry(c, .dead), entry(NodeID(high: 14, low: 1), .left)])
        XCTAssertEqual(h.peer.members[b]?.status, .suspect, "added with the entry's status")
        XCTAssertEqual(h.peer.members[b]?.endpoint, Endpoint(address: 0x7F00_0001, port: 7), "address 0: the datagram's source")
        XCTAssertNil(h.peer.members[c], "dead entries about unknown members are ignored")
        XCTAssertNil(h.peer.members[NodeID(high: 14, low: 1)])
    }

    func testAnUnknownMemberReapedRecentlyIsNotRelearned() {
        var h = PeerHarness()
        h.start()
        h.ping(from: b, name: "b")
        h.receive(.goodbye, from: b, name: "b")
        h.fakes[9100] = (a, "a")
        for _ in 0..<410 {
            h.advance(150 * ms, silent: [])
            h.ping(from: a, name: "a")
        }
        XCTAssertNil(h.peer.members[b], "reaped 60 s after leaving")
        let alive = MemberEntry(id: b, incarnation: 9, status: .alive, endpoint: Endpoint(address: 0, port: 7), name: "b")
        h.ping(from: a, name: "a", gossip: [alive])
        XCTAssertNil(h.peer.members[b], "gossip about a removed member is ignored for one reap time")
    }

    func testElectionDoesNotWaitForSuspects() {
        var h = PeerHarness()
        h.start()
        h.ping(from: a, name: "a")
        h.ping(from: b, name: "b", port: 9200)
        // a answers this peer's PINGs, b does not (version 2: suspected by probing).
        h.fakes[9100] = (a, "a")
        h.fakes[9200] = (b, "b")
        for _ in 0..<7 { h.advance(100 * ms, silent: [b]) }
        XCTAssertEqual(h.peer.members[b]?.status, .suspect)
        h.record(h.peer.elect("t", now: h.time))
        h.receive(.candidacy(Candidacy(term: 1, topic: "t")), from: a, name: "a", stamp: 1)
        // Issue 16 A.2 item 1: nobody is waited for; the decision comes at the window.
        h.advance(h.peer.config.decisionWindow, silent: [b])
        XCTAssertEqual(h.peer.leader(of: "t").name, "a", "decided at the window")
    }

    // MARK: §6.3.1 responders on the ring (issue 16)

    /// Whether the harness peer is one of the 3 responders on the ring for `newcomer` among
    /// the members it holds alive (the newcomer excluded), itself included.
    func isResponder(_ h: PeerHarness, for newcomer: NodeID) -> Bool {
        let alive = h.peer.members.values.filter { $0.status == .alive && $0.id != newcomer }.map(\.id) + [h.peer.config.id]
        return Ring(alive).successors(of: newcomer, count: 3).contains(h.peer.config.id)
    }

    /// Issue 16: with multicast, an ANNOUNCE is answered (MEMBERS) and a HELLO (HELLO_REPLY,
    /// counting 3 responders) only by the newcomer's 3 rendezvous responders; an ANNOUNCE that
    /// carries a HELLO (§6.3.1) gets both answers, the HELLO_REPLY with the carried request id.
    func testAnnounceAndHelloAreAnsweredOnlyByTheRendezvousResponders() {
        var h = PeerHarness()
        h.start()
        _ = h.join(10)
        var answered = 0
        for index in 0..<40 {
            let newcomer = NodeID(high: 0xA00, low: UInt64(index))
            let hello = index % 3 == 0, carried = index % 3 == 2
            h.clearSent()
            h.receive(hello ? .hello(Hello(requestID: 5, revoked: .empty)) : .announce(Announcement(memberCount: 1, revoked: .empty)),
                from: newcomer, name: "n\(index)", port: 9900, extensions: carried ? [Message.carrying(hello: 0xBEEF)] : [])
            let chosen = isResponder(h, for: newcomer)
            if carried, chosen {
                XCTAssertEqual(h.sentPayloads().compactMap { if case .helloReply(let reply) = $0 { reply.requestID } else { nil } }, [UInt32(0xBEEF)])
                XCTAssertTrue(h.sentPayloads().contains { if case .members = $0 { true } else { false } })
            }
            let replies = h.sentPayloads().filter {
                switch $0 {
                case .members, .helloReply: true
                default: false
                }
            }
            XCTAssertEqual(!replies.isEmpty, chosen, "newcomer \(index)")
            if chosen { answered += 1 }
            for case .helloReply(let reply) in replies { XCTAssertEqual(reply.memberCount, 3, "three responders to expect") }
            h.receive(.goodbye, from: newcomer, name: "n\(index)", port: 9900)
        }
        XCTAssertGreaterThan(answered, 0)
        XCTAssertLessThan(answered, 40, "not everyone answers everyone")
    }

    /// §6.3.1: a starting peer's first ANNOUNCE carries its first HELLO (one multicast for
    /// both); its responders answer it as both (``testAnnounceAndHelloAreAnsweredOnlyByTheRendezvousResponders``).
    func testTheFirstAnnounceCarriesTheHelloAndIsAnsweredAsBoth() {
        var joiner = PeerHarness()
        joiner.start()
        let group = joiner.sent.filter { if case .group = $0.1 { true } else { false } }.map(\.0)
        XCTAssertEqual(group.map(\.payload.type), [.announce], "one datagram to the group at start")
        XCTAssertEqual(group.first?.carriedHello?.requestID, joiner.peer.sync.mingle.requestID)
    }

    /// Issue 16: without multicast every member answers, and a HELLO_REPLY counts every alive
    /// member (the responder included) as a responder.
    func testWithoutMulticastEveryMemberAnswers() {
        var h = PeerHarness { $0.multicast = false }
        h.start()
        _ = h.join(10)
        for index in 0..<10 {
            let newcomer = NodeID(high: 0xA00, low: UInt64(index))
            h.clearSent()
            h.receive(.announce(Announcement(memberCount: 1, revoked: .empty)), from: newcomer, name: "a\(index)", port: 9900)
            XCTAssertTrue(h.sentPayloads().contains { if case .members = $0 { true } else { false } })
            h.clearSent()
            h.receive(.hello(Hello(requestID: 5, revoked: .empty)), from: NodeID(high: 0xB00, low: UInt64(index)), name: "h\(index)", port: 9901)
            let counts = h.sentPayloads().compactMap { if case .helloReply(let reply) = $0 { reply.memberCount } else { nil } }
            XCTAssertEqual(counts, [UInt16(h.peer.members.values.filter { $0.status == .alive }.count)], "alive others + 1")
        }
    }

    // MARK: §6.3 mingle

    func testHelloIsResentAtGapsOf40_80_160_320MillisecondsWhileNoReplyCame() {
        // A long alone-after, so that the join runs long enough to show every resend.
        var h = PeerHarness { $0.aloneAfter = 2_000 * PeerHarness.ms }
        XCTAssertEqual(helloSends(&h), [0, 40, 120, 280, 600, 1_240, 1_880])
    }

    /// Issue 21: the first reply to the first HELLO measures the round trip; the resends for the
    /// replies still missing come 4 round trips apart (then doubling), not 40 ms.
    func testHelloResendsFollowTheFirstReplysRoundTrip() {
        var h = PeerHarness { $0.aloneAfter = 2_000 * PeerHarness.ms }
        XCTAssertEqual(helloSends(&h, replyAfter: ms), [0, 4, 12, 28, 60, 124, 188, 252], "8 sends at most")
        // Every promised reply in: no resend.
        var all = PeerHarness { $0.aloneAfter = 2_000 * PeerHarness.ms }
        XCTAssertEqual(helloSends(&all, replyAfter: ms, promised: 1), [0])
    }

    /// The times (ms after start) of the HELLOs a join sends, with one reply promising
    /// `promised` after `replyAfter` (none when nil).
    func helloSends(_ h: inout PeerHarness, replyAfter: UInt64? = nil, promised: UInt16 = 3) -> [UInt64] {
        let start = h.now
        h.start()
        var sends: [UInt64] = []
        for step in 0..<3_000 {
            sends += h.sentHellos().map { _ in (h.now - start) / ms }
            if let replyAfter, UInt64(step) * ms == replyAfter {
                h.receive(.helloReply(HelloReply(requestID: helloID(h, any: true), memberCount: promised, revoked: .empty, members: [])), from: a, name: "a")
            }
            h.clearSent()
            h.advance(ms)
        }
        return sends
    }

    func helloID(_ h: PeerHarness, any: Bool = false) -> UInt32 {
        if any { return h.peer.sync.mingle.requestID }
        return h.sentHellos().first?.requestID ?? 0
    }

    func testALostFirstPageIsAskedForFromTheBurstCursor() throws {
        var h = PeerHarness()
        h.start()
        h.receive(.helloReply(HelloReply(requestID: helloID(h), memberCount: 1, revoked: SetDigest(count: 3, hash: 9), members: [])), from: server, name: "s")
        let first = try XCTUnwrap(pageRequests(h).last)
        XCTAssertEqual([first.cursor, first.until], ["", ""])
        h.clearSent()
        let at = h.time.wallMillis
        h.receive(.page(RevokedPage(requestID: first.requestID, index: 1, last: false, entries: [RevokedEntry(id: "m", revokedAtMillis: at)])), from: server, name: "s")
        h.receive(.page(RevokedPage(requestID: first.requestID, index: 2, last: true, entries: [RevokedEntry(id: "x", revokedAtMillis: at)])), from: server, name: "s")
        // Page 0 may only be late (pages can arrive out of order): the settle timeout decides.
        XCTAssertEqual(pageRequests(h).count, 0)
        h.advance(h.peer.config.pageTimeout)
        XCTAssertEqual(pageRequests(h).first.map { [$0.cursor, $0.until] }, ["", "m"], "(burst cursor, first id of the lowest page that arrived)")
    }

    func pageRequests(_ h: PeerHarness) -> [PageRequest] {
        h.sentPayloads().compactMap { if case .pageRequest(let request) = $0 { request } else { nil } }
    }

    // MARK: §7.3 replay window

    func testReplayWindowIsTheHighestAndThe255Below() {
        var h = PeerHarness { $0.keys = [AuthKey(Array(repeating: 3, count: 32))] }
        h.start()
        for sequence: UInt64 in [1_000, 745, 744, 745, 1_000] {
            let header = Header(sequence: sequence, stamp: 1, sender: a, incarnation: 0, replyPort: 1, cluster: "starling", name: "a")
            h.record(h.peer.onDatagram(try! h.codec.encode(Message(header: header, payload: .digestRequest(requestID: 1))), from: Endpoint(address: 1, port: 1), now: h.time))
        }
        // 1000 and 745 (H − 255) accepted; 744 (H − 256) and the repeats of 745 and 1000 dropped.
        XCTAssertEqual(h.peer.counters.drops["replay"], 3)
    }
}
