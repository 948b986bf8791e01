@testable import StarlingCore
import XCTest

/// Regression tests for issue 14 (hostile LAN): counters at their top, unbounded tables,
/// bytes compared as text, amplification. Each names the item it covers.
final class HostileInputTests: XCTestCase {
    let ms = PeerHarness.ms
    let ghost = NodeID(high: 0x6000, low: 6)
    let alice = NodeID(high: 1, low: 1)

    // MARK: Counters at their top (items 2, 3, 4)

    /// Item 2: a CANDIDACY at term 2^64−1 from a member that then goes silent used to trap at
    /// the re-election's `term + 1`. Such a term is now refused on the wire, and the highest
    /// term that is accepted ends elections on the topic instead of wrapping.
    func testCandidacyAtTheTopTermNeverTraps() throws {
        var h = PeerHarness.started()
        var header = Samples.header()
        header.sender = ghost
        XCTAssertThrowsError(try Codec().encode(Message(header: header, payload: .candidacy(Candidacy(term: .max, topic: "jobs")))))
        let raw = try Self.rawCandidacy(term: .max, sender: ghost)
        h.record(h.peer.onDatagram(raw, from: Endpoint(address: 0x7F00_0001, port: 9100), now: h.time))
        XCTAssertEqual(h.peer.counters.drops["invalid_value"], 1)
        XCTAssertNil(h.peer.elections["jobs"])

        h.ping(from: ghost, name: "ghost")
        h.receive(.candidacy(Candidacy(term: Limits.maxTerm, topic: "jobs")), from: ghost, name: "ghost", stamp: 1)
        h.advance(600 * ms)
        XCTAssertEqual(h.peer.elections["jobs"]?.term, Limits.maxTerm)
        // The ghost goes silent: found dead (by probing, with a lone suspector's longest
        // suspicion), its leadership would be re-elected at term + 1.
        h.advance(30_000 * ms)
        XCTAssertEqual(h.peer.members[ghost]?.status, .dead)
        XCTAssertEqual(h.peer.elections["jobs"]?.term, Limits.maxTerm)
        _ = h.peer.elect("jobs", now: h.time)
        XCTAssertEqual(h.peer.elections["jobs"]?.term, Limits.maxTerm)
    }

    /// Item 3: a stamp of 2^64−1 used to wrap every clock to about 15. Stamps above 2^63−1 are
    /// refused; the clock saturates there and never goes back.
    func testLamportClockNeverWraps() throws {
        var h = PeerHarness.started()
        h.ping(from: alice, name: "alice")
        let before = h.peer.clock.value
        let raw = try Self.rawPing(stamp: .max, sender: alice)
        h.record(h.peer.onDatagram(raw, from: Endpoint(address: 0x7F00_0001, port: 9100), now: h.time))
        XCTAssertEqual(h.peer.counters.drops["invalid_value"], 1)
        XCTAssertGreaterThanOrEqual(h.peer.clock.value, before)

        h.receive(.ping(Ping(probeID: 1, target: h.peer.config.id, revoked: .empty)), from: alice, name: "alice", stamp: LamportClock.max)
        XCTAssertEqual(h.peer.clock.value, LamportClock.max)
        h.advance(500 * ms)
        XCTAssertEqual(h.peer.clock.value, LamportClock.max, "saturates, never wraps")

        var clock = LamportClock(value: .max)
        XCTAssertEqual(clock.value, LamportClock.max, "a state file beyond the ceiling is lowered")
        XCTAssertEqual(clock.tick(), LamportClock.max)
        clock.adjust(to: .max)
        XCTAssertEqual(clock.value, LamportClock.max)
    }

    /// Item 4: refuting at incarnation 2^32−1 wrapped to 0. Claims at the top are ignored, so a
    /// refutation always has a higher incarnation to take.
    func testIncarnationNeverWrapsAndTopClaimsAreIgnored() {
        var h = PeerHarness.started()
        let me = h.peer.config.id
        func claim(_ incarnation: UInt32) -> MemberEntry {
            MemberEntry(id: me, incarnation: incarnation, status: .dead, endpoint: Endpoint(address: 0, port: 9000), name: "me")
        }
        h.ping(from: alice, name: "alice", gossip: [claim(.max - 1)])
        XCTAssertEqual(h.peer.incarnation, .max)
        h.ping(from: alice, name: "alice", gossip: [claim(.max)])
        XCTAssertEqual(h.peer.incarnation, .max, "no wrap to 0")

        // A dead claim about someone else at the top is ignored too, and counted.
        h.ping(from: alice, name: "alice", incarnation: 0, gossip: [MemberEntry(id: alice, incarnation: .max, status: .dead,
            endpoint: Endpoint(address: 0, port: 9100), name: "alice")])
        XCTAssertEqual(h.peer.members[alice]?.status, .alive)
        XCTAssertGreaterThanOrEqual(h.peer.counters.drops["unrefutable"] ?? 0, 2)

        // A GOODBYE at the top incarnation could never be refuted either.
        h.receive(.goodbye, from: alice, name: "alice", incarnation: .max)
        XCTAssertEqual(h.peer.members[alice]?.status, .alive)
    }

    /// Item 4: a GOODBYE forged in this peer's name is refuted at once (the peer drops its own
    /// id as looped-back multicast, so it would otherwise never learn of it), and a member
    /// others hold as left while it still talks is told so, so that it refutes.
    func testForgedGoodbyeIsRefuted() {
        var h = PeerHarness.started()
        let me = h.peer.config.id
        h.ping(from: alice, name: "alice")
        h.clearSent()
        h.receive(.goodbye, from: me, name: "me", incarnation: 5)
        XCTAssertEqual(h.peer.incarnation, 6)
        XCTAssertEqual(h.changes.map(\.0.first?.incarnation), [6], "refuted by one CHANGE (issue 16)")

        h.receive(.goodbye, from: alice, name: "alice")
        XCTAssertEqual(h.peer.members[alice]?.status, .left)
        h.clearSent()
        h.ping(from: alice, name: "alice")
        h.advance(200 * ms)
        // Version 2: the verdict rides on the ACK (and the PINGs) piggyback.
        let regossiped = (h.pings + h.acks.map(\.0)).contains { $0.piggyback.contains { $0.id == alice && $0.status == .left } }
        XCTAssertTrue(regossiped, "the verdict goes back to the member that still talks")
    }

    /// Found by the stateful fuzzer (issue 14, flood design): one datagram carrying a member's
    /// name under a new id from its address made every peer drop the real member for good. The
    /// real one talks on, so it is taken back beside the forged id, and the forged one dies.
    func testForgedRestartDoesNotEvictTheRealMember() {
        var h = PeerHarness.started()
        h.ping(from: alice, name: "alice")
        let forged = NodeID(high: 0x666, low: 6)
        h.ping(from: forged, name: "alice")
        XCTAssertNil(h.peer.members[alice], "looks like a restart at first")
        // Alice answers this peer's PINGs; the forged id, at her address, never does.
        h.fakes[9100] = (alice, "alice")
        for _ in 0..<40 {
            h.ping(from: alice, name: "alice")
            h.advance(150 * ms, silent: [forged])
        }
        XCTAssertEqual(h.peer.members[alice]?.status, .alive)
        XCTAssertEqual(h.peer.members[forged]?.status, .dead)
        XCTAssertTrue(h.events.contains { if case .duplicateName(let name, _) = $0 { name == "alice" } else { false } })
        h.advance(61_000 * ms)
        XCTAssertTrue(h.peer.replaced.isEmpty, "no replaced id is kept forever")
    }

    // MARK: Pagination sized by the codec (item 6)

    /// Item 6: each MEMBERS entry was counted one byte short, so a full page encoded above 1,400
    /// bytes and was dropped. 40 members with 64-byte names must all arrive.
    func testFullMembersPagesAreSentWhole() {
        var h = PeerHarness.started { $0.name = String(repeating: "m", count: 64) }
        for index in 0..<40 {
            h.ping(from: NodeID(high: 0x100, low: UInt64(index)), name: String(repeating: "n", count: 54) + String(format: "%010d", index))
        }
        h.clearSent()
        h.receive(.members(MembersPage(replyWanted: true, page: 0, pageCount: 1, entries: [])), from: alice, name: "alice")
        let entries = h.sentPayloads().flatMap { if case .members(let page) = $0 { page.entries } else { [] } }
        XCTAssertEqual(entries.count, 42, "self, alice and the 40 others")
        XCTAssertNil(h.peer.counters.drops.keys.first { $0.hasPrefix("encode_") })
    }

    // MARK: Bytes, not text (item 9)

    /// Item 9: "café" in NFC and in NFD are one Swift String but two ids on the wire.
    func testIdsNamesAndTopicsCompareAsBytes() {
        let nfc = "caf\u{E9}"
        let nfd = "cafe\u{301}"
        XCTAssertEqual(nfc, nfd, "Swift compares them canonically")
        var set = RevokedSet()
        XCTAssertTrue(set.insert(nfc, revokedAtMillis: 1_000, nowMillis: 1_000))
        XCTAssertTrue(set.insert(nfd, revokedAtMillis: 1_000, nowMillis: 1_000))
        XCTAssertEqual(set.count, 2)
        XCTAssertEqual(set.sortedIDs().count, 2)

        var h = PeerHarness.started()
        h.ping(from: alice, name: "alice")
        h.receive(.leader(LeaderAnnouncement(term: 1, leader: alice, leaderStamp: 3, topic: nfc, leaderName: "alice")), from: alice, name: "alice")
        h.receive(.leader(LeaderAnnouncement(term: 1, leader: alice, leaderStamp: 3, topic: nfd, leaderName: "alice")), from: alice, name: "alice")
        XCTAssertEqual(h.peer.elections.count, 2)

        // A cluster name that is canonically equal but not byte-equal is a foreign cluster.
        var other = PeerHarness { $0.cluster = nfd }
        other.start()
        var header = Samples.header()
        header.cluster = nfc
        header.sender = alice
        let bytes = try! Codec().encode(Message(header: header, payload: .goodbye))
        other.record(other.peer.onDatagram(bytes, from: Endpoint(address: 0x7F00_0001, port: 9100), now: other.time))
        XCTAssertEqual(other.peer.counters.drops["foreign_cluster"], 1)
    }

    // MARK: Drop reasons (item 10)

    /// Item 10: an empty PAGE id is `bad_length` (every byte is present), and lengths are
    /// judged before UTF-8 (§5.1): an invalid-UTF-8 cluster with name_len 0 is `bad_length`.
    func testDropReasonsFollowTheSpecOrder() throws {
        var page = try Codec().encode(Samples.message(.page(RevokedPage(requestID: 1, index: 0, last: true,
            entries: [RevokedEntry(id: "a", revokedAtMillis: 5)]))))
        // Make the id empty: its length byte to 0 and drop its one byte, payload_len one less.
        let idAt = page.count - 9
        page.remove(at: idAt)
        page[idAt - 1] = 0
        let lengthAt = 48 + "starling".utf8.count + "worker-1".utf8.count
        page[lengthAt + 1] -= 1
        XCTAssertThrowsError(try Codec().decode(page)) { XCTAssertEqual(($0 as? WireError)?.reason, "bad_length") }

        var header = try Codec().encode(Samples.message(.goodbye))
        header[46] = 8                      // cluster_len stays 8
        header[47] = 0                      // name_len 0
        header[48] = 0xFF                   // cluster's first byte is not UTF-8
        XCTAssertThrowsError(try Codec().decode(header)) { XCTAssertEqual(($0 as? WireError)?.reason, "bad_length") }
    }

    // MARK: Bounded state (items 11, 12, 13)

    /// Items 11 and 13: forged senders cannot grow the view without bound, nor faster than
    /// the admission rate; both limits are counted.
    func testViewIsBoundedAndAdmissionIsRateLimited() {
        var h = PeerHarness.started {
            $0.limits.members = 50
            $0.limits.admissionBurst = 30
            $0.limits.admissionsPerSecond = 10
        }
        for index in 0..<100 { h.ping(from: NodeID(high: 0x200, low: UInt64(index)), name: "forged-\(index)") }
        XCTAssertEqual(h.peer.members.count, 30)
        XCTAssertEqual(h.peer.counters.drops["admission_limited"], 70)
        h.now += 10_000 * ms
        for index in 100..<200 { h.ping(from: NodeID(high: 0x200, low: UInt64(index)), name: "forged-\(index)") }
        XCTAssertLessThanOrEqual(h.peer.members.count, 50)
        XCTAssertGreaterThan(h.peer.counters.drops["members_full"] ?? 0, 0)
        // A departed (or dead) member makes room for a new one.
        let gone = h.peer.members.keys.min()!
        h.receive(.goodbye, from: gone, name: h.peer.members[gone]!.name)
        h.now += 1_000 * ms
        h.ping(from: alice, name: "alice")
        XCTAssertEqual(h.peer.members[alice]?.status, .alive)
    }

    /// The targets of the PINGs sent from the waiting room (probe id 0) since `mark`.
    func askedTargets(_ h: PeerHarness, since mark: Int) -> [NodeID] {
        h.sent[mark...].compactMap { if case .ping(let ping) = $0.0.payload, ping.probeID == 0 { ping.target } else { nil } }
    }

    /// §6.6: a newcomer the rate refused waits; when the rate allows, the peer PINGs it (one
    /// token each) and admits it by its answer. In a cold start of 2,000 every peer refused
    /// ~850 announcers, and gossip alone left views incomplete after 60 s. Heard only
    /// first-hand, it is asked at once by its responders alone, by the others after a wait
    /// for a member's word; that word (a unicast entry) makes a peer ask it at once.
    func testARefusedNewcomerIsAskedByItsRespondersOrOnAMembersWord() {
        var h = PeerHarness.started {
            $0.limits.admissionBurst = 10
            $0.limits.admissionsPerSecond = 20
        }
        let fakes = h.join(20)
        XCTAssertEqual(h.peer.members.count, 10)
        XCTAssertEqual(h.peer.counters.drops["admission_limited"], 10)
        let refused = Array(fakes[10...])
        let mine = refused.filter { h.peer.membership.responders(for: $0) != nil }
        XCTAssertFalse(mine.isEmpty, "some of the refused have this peer among their responders")
        XCTAssertLessThan(mine.count, refused.count, "and some do not")
        var mark = h.sent.count
        h.advance(900 * ms, silent: [])
        XCTAssertEqual(Set(askedTargets(h, since: mark)), Set(mine), "heard first-hand only, a newcomer is asked at once by its responders")
        for id in refused { XCTAssertEqual(h.peer.members[id] != nil, mine.contains(id), "\(id)") }
        // The others, after this peer's wait for a member's word (1 to 2 s).
        h.advance(2_100 * ms, silent: [])
        XCTAssertEqual(Set(askedTargets(h, since: mark)), Set(refused))
        for id in fakes { XCTAssertEqual(h.peer.members[id]?.status, .alive, "\(id)") }
        // The same newcomers, but a member's PING names them (unicast entries) while the rate
        // is still spent: every one is asked, and admitted by its answer.
        var v = PeerHarness.started {
            $0.limits.admissionBurst = 10
            $0.limits.admissionsPerSecond = 20
        }
        XCTAssertEqual(v.join(20), fakes)
        mark = v.sent.count
        v.ping(from: fakes[0], name: "f0", gossip: refused.map { v.entry($0, .alive) }, port: v.port(of: fakes[0]))
        XCTAssertEqual(v.peer.members.count, 10, "the rate is spent: they wait")
        v.advance(900 * ms, silent: [])
        XCTAssertEqual(Set(askedTargets(v, since: mark)), Set(refused))
        for id in fakes { XCTAssertEqual(v.peer.members[id]?.status, .alive, "\(id)") }
    }

    /// Forged newcomers refused by the rate fill the waiting room (bounded, the oldest
    /// forgotten), never the view: a PING in a forged id's name goes unanswered, and each costs
    /// a token, so the PINGs too stay within the rate.
    func testForgedNewcomersWaitBoundedAndNeverEnterTheView() {
        var h = PeerHarness.started {
            $0.limits.admissionBurst = 10
            $0.limits.admissionsPerSecond = 10
            $0.limits.admissionWaiting = 16
        }
        let member = h.join(1)[0]
        let forged = (0..<100).map { NodeID(high: 0x200, low: UInt64($0)) }
        // Vouched for by a (forged) member's word, so that each waiting one is asked.
        for chunk in stride(from: 0, to: forged.count, by: 10) {
            let entries = forged[chunk..<chunk + 10].map { MemberEntry(id: $0, incarnation: 0, status: .alive,
                endpoint: Endpoint(address: PeerHarness.loopback, port: UInt16(20_000 + $0.low)), name: "forged-\($0.low)") }
            h.ping(from: member, name: "f0", gossip: Array(entries), port: h.port(of: member))
        }
        XCTAssertEqual(h.peer.members.count, 10)
        XCTAssertEqual(h.peer.counters.drops["admission_limited"], 91)
        XCTAssertEqual(h.peer.counters.drops["admission_waiting_full"], 75)
        let mark = h.sent.count
        h.advance(10_000 * ms)
        XCTAssertEqual(h.peer.members.count, 10, "no forged newcomer enters from the waiting room")
        let asked = askedTargets(h, since: mark)
        // The 16 newest waited; each was asked once.
        XCTAssertEqual(Set(asked), Set(forged[84...]))
        XCTAssertEqual(asked.count, 16)
    }

    /// §6.1.2: a responder that refused a newcomer's ANNOUNCE for the rate answers it once the
    /// newcomer answered its PING from the waiting room: a newcomer whose three responders all
    /// refused it otherwise got no view, and learned the members that started before it by gossip.
    func testARefusedAnnounceIsAnsweredOnceTheNewcomerIsAdmitted() {
        var h = PeerHarness.started {
            $0.limits.admissionBurst = 1
            $0.limits.admissionsPerSecond = 1
        }
        let first = h.join(1)[0]
        XCTAssertNotNil(h.peer.members[first])
        let newcomer = NodeID(high: 0x900, low: 77)
        let port: UInt16 = 9_770
        h.fakes[port] = (newcomer, "late")
        let mark = h.sent.count
        h.receive(.announce(Announcement(memberCount: 1, revoked: .empty)), from: newcomer, name: "late", port: port)
        XCTAssertNil(h.peer.members[newcomer])
        XCTAssertFalse(h.sent[mark...].contains { if case .members = $0.0.payload { true } else { false } }, "refused: no answer yet")
        h.advance(2_000 * ms, silent: [])
        XCTAssertEqual(h.peer.members[newcomer]?.status, .alive)
        let pages = h.sent[mark...].filter { if case .members = $0.0.payload, case .peer(let to) = $0.1, to.port == port { true } else { false } }
        XCTAssertEqual(pages.count, 1, "the view it is owed, once")
        if case .members(let page) = pages.first?.0.payload {
            XCTAssertTrue(Set(page.entries.map(\.id)).isSuperset(of: [h.peer.config.id, first]), "\(page.entries.map(\.name))")
        }
    }

    static func forty() -> [MemberEntry] {
        (0..<40).map { index in
            MemberEntry(id: NodeID(high: UInt64(0x300 + index), low: UInt64(index) &* 0x9E37_79B9), incarnation: 0, status: .alive,
                        endpoint: Endpoint(ip: IPAddress(ipv4: 0x7F00_0002), port: UInt16(9_000 + index)), name: "m\(index)")
        }
    }

    /// A joining peer with a rate of 1 refuses newcomer (0x900, 77)'s ANNOUNCE as one of its
    /// responders, then takes a view of 40 whole: the newcomer's responders are others now.
    func refusedThenRingMoved() -> PeerHarness {
        var h = PeerHarness {
            $0.limits.admissionBurst = 1
            $0.limits.admissionsPerSecond = 1
        }
        h.start()
        let first = h.join(1)[0]
        let newcomer = NodeID(high: 0x900, low: 77)
        h.receive(.announce(Announcement(memberCount: 1, revoked: .empty)), from: newcomer, name: "late", port: 9_770)
        XCTAssertNil(h.peer.members[newcomer], "refused by the rate")
        XCTAssertNotNil(h.peer.membership.owedAnswer(to: newcomer), "one of its responders when it came")
        for part in [0..<20, 20..<40] {
            h.receive(.members(MembersPage(replyWanted: false, page: 0, pageCount: 1, entries: Array(Self.forty()[part]))), from: first, name: h.name(of: first), port: h.port(of: first))
        }
        XCTAssertEqual(h.peer.members.count, 41)
        XCTAssertNil(h.peer.membership.owedAnswer(to: newcomer), "no longer one of its responders")
        return h
    }

    /// §6.1.2: the answer held back is owed by the responder the ANNOUNCE came to, even when its
    /// ring has grown since and others are the newcomer's responders now: they never heard that
    /// ANNOUNCE. (In a cold start of 200 with a cut rate, newcomers refused by every responder
    /// got no view at all.)
    func testARefusedAnnounceIsAnsweredAfterTheRingMovedOn() {
        var h = refusedThenRingMoved()
        let newcomer = NodeID(high: 0x900, low: 77)
        let port: UInt16 = 9_770
        h.fakes[port] = (newcomer, "late")
        let mark = h.sent.count
        h.advance(2_000 * ms, silent: [])
        XCTAssertEqual(h.peer.members[newcomer]?.status, .alive)
        let pages = h.sent[mark...].filter { if case .members = $0.0.payload, case .peer(let to) = $0.1, to.port == port { true } else { false } }
        XCTAssertFalse(pages.isEmpty, "the answer it is owed, though the ring moved on")
    }

    /// §6.6: a joiner refused by the rate still has its mingle answered by its responders (a
    /// HELLO, alone or carried by its ANNOUNCE): it adds no row, and an unanswered joiner
    /// multicast its HELLO again and again. Its PING is answered; its other datagrams are not.
    func testARefusedJoinersHelloIsAnswered() {
        var h = PeerHarness {
            $0.limits.admissionBurst = 1
            $0.limits.admissionsPerSecond = 1
        }
        h.start()
        _ = h.join(1)
        let joiner = NodeID(high: 0x900, low: 78)
        h.clearSent()
        h.receive(.hello(Hello(requestID: 9, revoked: .empty)), from: joiner, name: "joiner", port: 9_780)
        XCTAssertNil(h.peer.members[joiner], "refused by the rate")
        XCTAssertEqual(h.sentPayloads().compactMap { if case .helloReply(let reply) = $0 { reply.requestID } else { nil } }, [UInt32(9)])
        h.clearSent()
        h.receive(.announce(Announcement(memberCount: 1, revoked: .empty)), from: NodeID(high: 0x900, low: 79), name: "joiner2", port: 9_790,
                  extensions: [Message.carrying(hello: 11)])
        XCTAssertEqual(h.sentPayloads().compactMap { if case .helloReply(let reply) = $0 { reply.requestID } else { nil } }, [UInt32(11)], "carried")
        XCTAssertFalse(h.sentPayloads().contains { if case .members = $0 { true } else { false } }, "its view waits for its admission")
        h.clearSent()
        h.receive(.change([h.entry(joiner, .alive)]), from: joiner, name: "joiner", port: 9_780)
        XCTAssertTrue(h.sent.isEmpty, "nothing else of a refused sender is heard")
    }

    /// §6.1.2: the same debt, when the newcomer came into the view by other means (a member's
    /// page) and its next ANNOUNCE comes before the PING from the waiting room: that copy is
    /// answered, though the ring moved on.
    func testAnOwedAnswerGoesWhenTheNewcomersNextAnnounceComes() {
        var h = refusedThenRingMoved()
        let newcomer = NodeID(high: 0x900, low: 77)
        let first = NodeID(high: 0x900, low: 0)
        let entry = MemberEntry(id: newcomer, incarnation: 0, status: .alive, endpoint: Endpoint(address: PeerHarness.loopback, port: 9_770), name: "late")
        h.receive(.members(MembersPage(replyWanted: false, page: 0, pageCount: 1, entries: [entry])), from: first, name: h.name(of: first), port: h.port(of: first))
        XCTAssertNotNil(h.peer.members[newcomer], "admitted from a member's page")
        XCTAssertNil(h.peer.membership.owedAnswer(to: newcomer), "no responder of it by today's ring")
        h.clearSent()
        h.receive(.announce(Announcement(memberCount: 1, revoked: .empty)), from: newcomer, name: "late", port: 9_770)
        XCTAssertTrue(h.sent.contains { if case .members = $0.0.payload, case .peer(let to) = $0.1 { to.port == 9_770 } else { false } })
    }

    /// §6.1.2: a peer that was none of the newcomer's responders when it refused the ANNOUNCE
    /// owes nothing: admitted later, the newcomer gets no view from it.
    func testARefusalByAPeerThatIsNoResponderOwesNothing() {
        var h = PeerHarness {
            $0.limits.admissionBurst = 1
            $0.limits.admissionsPerSecond = 1
        }
        h.start()
        let first = h.join(1)[0]
        for part in [0..<20, 20..<40] {
            h.receive(.members(MembersPage(replyWanted: false, page: 0, pageCount: 1, entries: Array(Self.forty()[part]))), from: first, name: h.name(of: first), port: h.port(of: first))
        }
        let port: UInt16 = 9_770
        let newcomer = (UInt64(1)...200).lazy.map { NodeID(high: 0x900, low: $0) }.first { h.peer.membership.owedAnswer(to: $0) == nil }!
        h.fakes[port] = (newcomer, "late")
        h.receive(.announce(Announcement(memberCount: 1, revoked: .empty)), from: newcomer, name: "late", port: port)
        XCTAssertNil(h.peer.members[newcomer], "refused by the rate")
        let mark = h.sent.count
        h.advance(3_000 * ms, silent: [])
        XCTAssertEqual(h.peer.members[newcomer]?.status, .alive, "admitted from the waiting room")
        XCTAssertFalse(h.sent[mark...].contains { if case .members = $0.0.payload, case .peer(let to) = $0.1 { to.port == port } else { false } })
    }

    /// §6.6: while a peer joins (until 2 s after its last ANNOUNCE) the views it is sent come
    /// in whole; after that a MEMBERS page is admitted at the rate like any other gossip.
    func testAJoiningPeerTakesTheViewItIsSentWholeWithinTheBound() {
        var h = PeerHarness {
            $0.limits.members = 80
            $0.limits.admissionBurst = 10
            $0.limits.admissionsPerSecond = 10
        }
        h.start()
        func page(_ range: Range<Int>) -> Payload {
            .members(MembersPage(replyWanted: false, page: 0, pageCount: 1, entries: range.map { index in
                MemberEntry(id: NodeID(high: 0x300, low: UInt64(index)), incarnation: 0, status: .alive,
                            endpoint: Endpoint(ip: IPAddress(ipv4: 0x7F00_0002), port: UInt16(9_000 + index)), name: "m\(index)")
            }))
        }
        let responder = NodeID(high: 0x301, low: 1)
        for start in stride(from: 0, to: 60, by: 20) { h.receive(page(start..<start + 20), from: responder, name: "responder") }
        XCTAssertEqual(h.peer.members.count, 61, "the responder and its 60-member view, past a burst of 10")
        XCTAssertNil(h.peer.counters.drops["admission_limited"])
        for start in stride(from: 60, to: 100, by: 20) { h.receive(page(start..<start + 20), from: responder, name: "responder") }
        XCTAssertEqual(h.peer.members.count, 80, "the view's bound still holds")
        XCTAssertEqual(h.peer.counters.drops["members_full"], 21, "40 offered, room for 19")
        // Joined: a page is gossip like any other.
        h.advance(3_000 * ms)
        let before = h.peer.members.values.filter(\.isLive).count
        var gone = h.peer.members.keys.sorted().prefix(40).makeIterator()
        while let id = gone.next() { h.receive(.goodbye, from: id, name: h.peer.members[id]?.name ?? "?") }
        for start in stride(from: 200, to: 240, by: 20) { h.receive(page(start..<start + 20), from: responder, name: "responder") }
        let admitted = h.peer.members.values.filter { $0.id.high == 0x300 && $0.id.low >= 200 }.count
        XCTAssertLessThanOrEqual(admitted, 10 + 3, "the burst, and what the rate refilled meanwhile")
        XCTAssertGreaterThan(h.peer.counters.drops["admission_limited"] ?? 0, 0)
        XCTAssertGreaterThan(before, 0)
    }

    /// §6.6: a joining peer that spent its burst on other newcomers' ANNOUNCEs still takes its
    /// responders' answers, their senders included. It dropped them whole: the sender was
    /// refused, and with it the view it sent (in a cold start of 200 simulated peers with a cut
    /// rate, one joiner learned of a member 20 s late). After the join, the rate holds.
    func testAJoiningPeerTakesItsRespondersAnswersAfterSpendingItsBurst() {
        for joined in [false, true] {
            var h = PeerHarness {
                $0.limits.admissionBurst = 3
                $0.limits.admissionsPerSecond = 1
            }
            h.start()
            if joined { h.advance(3_000 * ms) }
            for index in 0..<6 {
                h.receive(.announce(Announcement(memberCount: 1, revoked: .empty)), from: NodeID(high: 0x302, low: UInt64(index)),
                          name: "n\(index)", port: UInt16(9_200 + index))
            }
            XCTAssertGreaterThan(h.peer.counters.drops["admission_limited"] ?? 0, 0, "the burst is spent")
            let responder = NodeID(high: 0x303, low: 1)
            let member = NodeID(high: 0x303, low: 2)
            let entries = [MemberEntry(id: responder, incarnation: 0, status: .alive, endpoint: Endpoint(ip: IPAddress(ipv4: 0x7F00_0003), port: 9_301), name: "responder"),
                           MemberEntry(id: member, incarnation: 0, status: .alive, endpoint: Endpoint(ip: IPAddress(ipv4: 0x7F00_0003), port: 9_302), name: "member")]
            h.receive(.members(MembersPage(replyWanted: false, page: 0, pageCount: 1, entries: entries)), from: responder, name: "responder", port: 9_301)
            if joined {
                XCTAssertNil(h.peer.members[responder], "joined: the rate holds for a page's sender")
                XCTAssertNil(h.peer.members[member])
            } else {
                XCTAssertEqual(h.peer.members[responder]?.status, .alive, "joining: the responder is taken")
                XCTAssertEqual(h.peer.members[member]?.status, .alive, "and the view it sent")
            }
        }
    }

    /// Item 12: topics are bounded; a full table makes room only from topics with no live
    /// leader and no election running, and says so in a counter otherwise.
    func testTopicsAreBounded() {
        var h = PeerHarness.started { $0.limits.topics = 8 }
        h.ping(from: alice, name: "alice")
        for index in 0..<20 {
            h.receive(.leader(LeaderAnnouncement(term: 1, leader: alice, leaderStamp: 3, topic: "t\(index)", leaderName: "alice")), from: alice, name: "alice")
        }
        XCTAssertEqual(h.peer.elections.count, 8)
        XCTAssertEqual(h.peer.counters.drops["topics_full"], 12)
    }

    /// Item 12: without a quorum a topic retries at growing intervals, not every two seconds.
    func testNoQuorumRetriesBackOff() {
        var h = PeerHarness.started { $0.quorum = 5 }
        _ = h.peer.elect("jobs", now: h.time)
        h.advance(120_000 * ms)
        let rounds = h.events.filter { if case .noQuorum = $0 { true } else { false } }.count
        XCTAssertLessThanOrEqual(rounds, 8, "2, 4, 8, 16, 32, 64 s apart, not 60 rounds")
        XCTAssertGreaterThanOrEqual(rounds, 3)
    }

    /// Item 13: relayed probes are bounded.
    func testRelaysAreBounded() {
        var h = PeerHarness.started { $0.limits.relays = 4 }
        h.ping(from: alice, name: "alice")
        for index in 0..<10 {
            let target = NodeID(high: 0x300, low: UInt64(index))
            h.ping(from: target, name: "t\(index)")
            h.receive(.pingRequest(Probe(probeID: UInt32(index), target: target)), from: alice, name: "alice")
        }
        XCTAssertEqual(h.peer.relays.count, 4)
        XCTAssertEqual(h.peer.counters.drops["relays_full"], 6)
    }

    /// Issue 16: a forged CHANGE cannot make the peer send more than one datagram per entry:
    /// witness PINGs go only to members of its view (never an address from the CHANGE), only
    /// for the suspects it witnesses, within the relay table; a claim against itself costs one
    /// CHANGE; replaying the same CHANGE sends nothing more.
    func testAForgedChangeCannotAmplify() {
        var h = PeerHarness.started { $0.limits.relays = 4 }
        let fakes = h.join(30)
        let forger = fakes[0]
        let me = h.peer.config.id
        let elsewhere = Endpoint(address: 0x0A00_0001, port: 1)
        var claims: [MemberEntry] = fakes.dropFirst().map { MemberEntry(id: $0, incarnation: 0, status: .suspect, endpoint: elsewhere, name: "x") }
        claims.append(MemberEntry(id: me, incarnation: 0, status: .suspect, endpoint: elsewhere, name: "me"))
        h.clearSent()
        h.change(claims, from: forger)
        XCTAssertLessThanOrEqual(h.pings.count, 4, "bounded by the relay table")
        XCTAssertEqual(h.peer.relays.count, h.pings.count, "each witness PING is a relay entry")
        XCTAssertEqual(h.changes.count, 1, "the refutation")
        XCTAssertLessThanOrEqual(h.sent.count, claims.count + 1)
        for (message, destination) in h.sent {
            if case .peer(let endpoint) = destination {
                XCTAssertEqual(endpoint.ip, IPAddress(ipv4: PeerHarness.loopback), "never at an address taken from the CHANGE")
                XCTAssertNotNil(h.fakes[endpoint.port], "\(message.payload)")
            }
        }
        h.clearSent()
        h.change(claims.dropLast(), from: forger)
        XCTAssertTrue(h.sent.isEmpty, "the same verdicts again send nothing")
    }

    /// Issue 16: a forged PING is answered by one ACK to its sender, only when it is for this
    /// peer; a PING for someone else (an earlier life at this address) gets nothing.
    func testAForgedPingGetsOneAckOrNothing() {
        var h = PeerHarness.started()
        h.clearSent()
        h.ping(from: alice, name: "alice", gossip: (0..<40).map { MemberEntry(id: NodeID(high: 0xC00, low: UInt64($0)),
            incarnation: 0, status: .suspect, endpoint: Endpoint(address: 0x0A00_0001, port: 1), name: "g\($0)") })
        XCTAssertEqual(h.sent.count, 1)
        XCTAssertEqual(h.acks.count, 1)
        h.clearSent()
        h.receive(.ping(Ping(probeID: 2, target: NodeID(high: 0xC01, low: 1), revoked: .empty)), from: alice, name: "alice")
        XCTAssertTrue(h.sent.isEmpty)
    }

    /// Item 25/13: a full replay table forgets the least recently heard sender, not all of them,
    /// so old datagrams of the others stay refused.
    func testReplayTableForgetsOneSenderAtATime() {
        let key = AuthKey(Array(repeating: 7, count: 32))
        var h = PeerHarness.started {
            $0.keys = [key]
            $0.limits.replayWindows = 16
        }
        let senders = (0..<17).map { NodeID(high: 0x400, low: UInt64($0)) }
        for (index, sender) in senders.enumerated() {
            h.ping(from: sender, name: "s\(index)")
            h.now += ms  // heard one after another: the first is the least recent
        }
        XCTAssertEqual(h.peer.replay.count, 16)
        XCTAssertNil(h.peer.replay[senders[0]])
        XCTAssertEqual(h.peer.counters.drops["replay_windows_full"], 1)
        // The 17th sender pushed out only the first: the second's old datagram is still a replay
        // (clearing the whole table, as before, let it through).
        h.sequences[senders[1]] = 0
        h.ping(from: senders[1], name: "s1")
        XCTAssertEqual(h.peer.counters.drops["replay"], 1)
    }

    /// Item 10: the window holds the highest sequence and the 255 below it.
    func testReplayWindowEdges() {
        var window = ReplayWindow()
        XCTAssertTrue(window.accept(1_000))
        XCTAssertTrue(window.accept(1_000 - 255))
        XCTAssertFalse(window.accept(1_000 - 256), "below the window")
        XCTAssertFalse(window.accept(1_000 - 255), "seen")
        XCTAssertFalse(window.accept(1_000))
    }

    // MARK: Revoke times and amplification (items 14, 15)

    /// Item 14: revoke times far in the future are lowered to now + 60 s, so they expire.
    func testFutureRevokeTimesAreClamped() {
        var set = RevokedSet(maxCount: 10, maxAgeMillis: 1_000)
        XCTAssertTrue(set.insert("x", revokedAtMillis: 1 << 62, nowMillis: 5_000))
        XCTAssertEqual(set.revokedAt("x"), 5_000 + RevokedSet.maxFutureSkewMillis)
        XCTAssertEqual(set.expire(nowMillis: 5_000 + RevokedSet.maxFutureSkewMillis + 1_000), 1)
        XCTAssertTrue(set.insert("y", revokedAtMillis: .max, nowMillis: .max - 10), "no wrap near the top")
    }

    /// Item 15: one PAGE_REQUEST is answered with at most a burst of pages, and a source that
    /// spent its answer budget is refused until it refills.
    func testAnswersAreBoundedPerRequestAndPerSource() {
        var h = PeerHarness.started {
            $0.limits.answerBytesBurst = 64 * 1_024
            $0.limits.answerBytesPerSecond = 16 * 1_024
        }
        for index in 0..<3_000 { h.peer.revoked.insert("task-\(String(repeating: "x", count: 60))-\(index)", revokedAtMillis: h.time.wallMillis, nowMillis: h.time.wallMillis) }
        h.ping(from: alice, name: "alice")
        h.clearSent()
        h.receive(.pageRequest(PageRequest(requestID: 1, bucketMask: .max, maxPages: 255, cursor: "", until: "")), from: alice, name: "alice")
        let pages = h.sentPayloads().filter { if case .page = $0 { true } else { false } }.count
        XCTAssertEqual(pages, 32)
        for id in 2...10 {
            h.receive(.pageRequest(PageRequest(requestID: UInt32(id), bucketMask: .max, maxPages: 32, cursor: "", until: "")), from: alice, name: "alice")
        }
        XCTAssertGreaterThan(h.peer.counters.drops["rate_limited"] ?? 0, 0)
        let bytes = h.sent.count * 1_400
        XCTAssertLessThan(bytes, 4 * 64 * 1_024, "bounded by the burst plus one request's answer")
    }

    // MARK: Mingle after a crash (item 27)

    /// Item 27: a joiner whose neighbours still count a member that crashed a moment ago used
    /// to wait the whole 3 s deadline; it now finishes shortly after the replies that can come.
    func testMingleFinishesWithoutWaitingForADeadMember() {
        var h = PeerHarness()
        h.start()
        let hello = h.sentHellos().first
        guard let hello else { return XCTFail("no hello") }
        // One neighbour answers and says there are two of them; the other crashed.
        h.receive(.helloReply(HelloReply(requestID: hello.requestID, memberCount: 2, revoked: .empty, members: [])), from: alice, name: "alice")
        h.advance(400 * ms)
        XCTAssertTrue(h.peer.isSynced)
        XCTAssertTrue(h.events.contains { if case .synced = $0 { true } else { false } })
    }

    /// Item 27, responder side; issue 16: the reply counts the responders the joiner can
    /// expect (min(3, alive others + 1)), not the members: a suspect one is not counted.
    func testHelloReplyCountsTheRespondersToExpect() {
        var h = PeerHarness.started()
        h.ping(from: alice, name: "alice")
        let bob = NodeID(high: 2, low: 2)
        h.ping(from: bob, name: "bob", port: 9200)
        h.ping(from: alice, name: "alice", gossip: [MemberEntry(id: bob, incarnation: 0, status: .suspect,
            endpoint: Endpoint(address: 0x7F00_0001, port: 9200), name: "bob")])
        XCTAssertEqual(h.peer.members[bob]?.status, .suspect)
        let joiner = NodeID(high: 0x700, low: 7)
        h.clearSent()
        h.receive(.hello(Hello(requestID: 9, revoked: .empty)), from: joiner, name: "joiner")
        let count = h.sentPayloads().compactMap { if case .helloReply(let reply) = $0 { reply.memberCount } else { nil } }.first
        XCTAssertEqual(count, 2, "alice and the responder itself; bob is suspect")
    }

    // MARK: Raw datagrams the encoder refuses to make

    static func rawHeader(type: MessageType, stamp: UInt64, sender: NodeID, payload: [UInt8]) -> [UInt8] {
        var bytes = Array("STRL".utf8) + [Limits.version, type.rawValue, 0, 0]
        bytes += withUnsafeBytes(of: UInt64(1).bigEndian, Array.init)
        bytes += withUnsafeBytes(of: stamp.bigEndian, Array.init)
        bytes += withUnsafeBytes(of: sender.high.bigEndian, Array.init) + withUnsafeBytes(of: sender.low.bigEndian, Array.init)
        bytes += [0, 0, 0, 0, 0x23, 0x8C, 8, 5] + Array("starling".utf8) + Array("ghost".utf8)
        bytes += [UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)] + payload
        return bytes
    }

    static func rawCandidacy(term: UInt64, sender: NodeID) throws -> [UInt8] {
        rawHeader(type: .candidacy, stamp: 5, sender: sender, payload: withUnsafeBytes(of: term.bigEndian, Array.init) + [4] + Array("jobs".utf8))
    }

    /// A PING (probe id 1, target 0, empty digest, no piggyback) with any stamp.
    static func rawPing(stamp: UInt64, sender: NodeID) throws -> [UInt8] {
        rawHeader(type: .ping, stamp: stamp, sender: sender, payload: [0, 0, 0, 1] + [UInt8](repeating: 0, count: 16 + 12) + [0])
    }
}

/// The bounds' rate limits themselves (issue 14 items 13, 15).
final class TokenBucketTests: XCTestCase {
    /// Found by the `attack` bench: a bucket asked more often than it earns a whole token never
    /// refilled, so after 1,024 admissions a busy peer admitted no real joiner again.
    func testFrequentCallsStillRefill() {
        var bucket = TokenBucket(capacity: 10, perSecond: 256, now: 0)
        bucket.take(10, now: 0)
        var now: UInt64 = 0
        for _ in 0..<1_000 {
            now += 1_000_000  // every millisecond: 0.256 of a token each time
            bucket.refill(now: now)
        }
        XCTAssertEqual(bucket.tokens, 10, "one second at 256/s refills a bucket of 10")
        bucket.take(10, now: now)
        for _ in 0..<20 {
            now += 1_000_000
            bucket.refill(now: now)
        }
        XCTAssertEqual(bucket.tokens, 5, "20 ms at 256/s is 5.12 tokens")
    }

    func testExtremeValuesNeverTrap() {
        var bucket = TokenBucket(capacity: .max, perSecond: .max, now: 0)
        bucket.take(.max, now: 1)
        bucket.refill(now: .max)
        XCTAssertEqual(bucket.tokens, .max)
        var still = TokenBucket(capacity: 5, perSecond: 0, now: 0)
        still.take(5, now: 0)
        still.refill(now: .max)
        XCTAssertEqual(still.tokens, 0)
        still.refill(now: 3)
        XCTAssertEqual(still.tokens, 0, "time going back adds nothing")
    }
}
