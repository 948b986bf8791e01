@testable import StarlingCore
import XCTest

/// Membership state machine with an injected clock (Protocol.md §6.1; protocol version 2,
/// issue 16: a member proves itself alive with any datagram, failures are found by probing).
final class MembershipTests: XCTestCase {
    let ms = PeerHarness.ms
    let alice = NodeID(high: 1, low: 1)
    let bob = NodeID(high: 2, low: 2)

    func testAnnounceIsRepeatedAndAnsweredByUnicast() {
        var h = PeerHarness()
        h.start()
        h.advance(300 * ms)
        let announces = h.sentPayloads().filter { if case .announce = $0 { true } else { false } }
        XCTAssertEqual(announces.count, 3)
        h.clearSent()
        h.receive(.announce(Announcement(memberCount: 1, revoked: .empty)), from: alice, name: "alice")
        XCTAssertTrue(h.sent.contains { if case .members = $0.0.payload, case .peer(let e) = $0.1 { e.port == 9100 } else { false } },
            "a newcomer's announce is answered with the view, by unicast")
        XCTAssertEqual(h.peer.members[alice]?.status, .alive)
    }

    /// §6.1.2: the first view answer (a MEMBERS page or a HELLO_REPLY) ends the repeats; other
    /// datagrams (a PING, another newcomer's ANNOUNCE) do not.
    func testAViewAnswerEndsTheAnnounceRepeats() {
        let datagrams: [(Payload, repeats: Bool)] = [
            (.members(MembersPage(replyWanted: false, page: 0, pageCount: 1, entries: [])), false),
            (.helloReply(HelloReply(requestID: 1, memberCount: 1, revoked: .empty, members: [])), false),
            (.ping(Ping(probeID: 1, target: PeerHarness().peer.config.id, revoked: .empty)), true),
            (.announce(Announcement(memberCount: 1, revoked: .empty)), true),
        ]
        for (datagram, repeats) in datagrams {
            var h = PeerHarness()
            h.start()
            h.advance(1 * ms)
            h.receive(datagram, from: alice, name: "alice")
            h.advance(300 * ms)
            let announces = h.sentPayloads().filter { if case .announce = $0 { true } else { false } }
            XCTAssertEqual(announces.count, repeats ? 3 : 1, "\(datagram.type)")
        }
    }

    /// A peer just started that holds a view of 60 (a MEMBERS page, taken whole while it joins),
    /// so that it is a responder of few newcomers.
    func startedWithAView() -> PeerHarness {
        var h = PeerHarness()
        h.start()
        h.advance(1 * ms)
        for part in 0..<3 {
            h.receive(.members(MembersPage(replyWanted: false, page: UInt8(part), pageCount: 3, entries: (part * 20..<part * 20 + 20).map { index in
                MemberEntry(id: NodeID(high: UInt64(0x300 + index), low: UInt64(index) &* 0x9E37_79B9), incarnation: 0, status: .alive,
                            endpoint: Endpoint(ip: IPAddress(ipv4: 0x7F00_0002), port: UInt16(9_000 + index)), name: "m\(index)")
            })), from: bob, name: "bob", port: 9200)
        }
        h.clearSent()
        return h
    }

    /// §6.1.2: a newcomer admitted by its ANNOUNCE within 200 ms of this peer's start may have
    /// missed its only ANNOUNCE: it is PINGed (probe id 0) at once, unless this peer is one of
    /// its responders (their answer carries them). Repeats, later newcomers and newcomers
    /// refused by the rate are not.
    func testNewcomersHeardRightAfterTheStartAreGreeted() throws {
        var h = startedWithAView()
        let announce = Payload.announce(Announcement(memberCount: 1, revoked: .empty))
        var greeted: NodeID?
        for low in UInt64(1)...20 where greeted == nil {
            let id = NodeID(high: 0x500, low: low)
            h.receive(announce, from: id, name: "n\(low)", port: UInt16(9_500 + low))
            let answered = h.sentPayloads().contains { if case .members = $0 { true } else { false } }
            let pinged = h.pings.filter { $0.probeID == 0 }.map(\.target)
            XCTAssertEqual(pinged, answered ? [] : [id], "a responder answers, any other peer greets")
            XCTAssertFalse(h.pings.first?.piggyback.contains { $0.id == id } ?? false, "the greeting does not tell the newcomer of itself")
            if !answered { greeted = id }
            h.clearSent()
        }
        let id = try XCTUnwrap(greeted)
        h.receive(announce, from: id, name: "again", port: 9_600)
        XCTAssertEqual(h.pings.map(\.target), [], "greeted once")
        h.advance(200 * ms)
        h.clearSent()
        h.receive(announce, from: alice, name: "alice")
        XCTAssertFalse(h.pings.contains { $0.target == alice && $0.probeID == 0 }, "after 200 ms a newcomer heard the repeats")

        var refusing = PeerHarness { $0.limits.admissionBurst = 1; $0.limits.admissionsPerSecond = 1 }
        refusing.start()
        refusing.ping(from: bob, name: "bob", port: 9200)
        refusing.clearSent()
        refusing.receive(announce, from: alice, name: "alice")
        XCTAssertNil(refusing.peer.members[alice])
        XCTAssertTrue(refusing.pings.isEmpty, "a newcomer refused by the rate is not greeted (a forged one costs a token first)")
    }

    /// §6.6: at most 256 greetings per start, the rest counted (a flood of forged ANNOUNCEs
    /// in a peer's first 200 ms makes it PING no more addresses than that).
    func testGreetingsAreBounded() {
        var h = startedWithAView()
        let newcomers = 400
        for index in 0..<newcomers {
            h.receive(.announce(Announcement(memberCount: 1, revoked: .empty)), from: NodeID(high: 0x700, low: UInt64(index)),
                      name: "n\(index)", port: UInt16(10_000 + index))
        }
        let answered = Set(h.sent.compactMap { if case .members = $0.0.payload, case .peer(let to) = $0.1 { to.port } else { nil } })
        XCTAssertEqual(h.pings.filter { $0.probeID == 0 }.count, Membership.greetings)
        XCTAssertEqual(h.peer.counters.drops["greetings_spent"], UInt64(newcomers - answered.count - Membership.greetings))
    }

    /// Issue 16: a silent member is pinged once in a period, suspected at the period's end,
    /// and dead when the suspicion runs out (no heartbeat timing any more).
    func testSilenceLeadsToSuspectThenDead() throws {
        var h = PeerHarness()
        h.start()
        h.ping(from: alice, name: "alice")
        h.clearSent()
        h.advance(200 * ms)
        XCTAssertEqual(h.pings.map(\.target), [alice], "one PING in the first period")
        XCTAssertEqual(h.peer.members[alice]?.status, .alive)
        h.advance(200 * ms - 1)
        XCTAssertEqual(h.peer.members[alice]?.status, .alive, "not before the period's end")
        h.advance(1)
        XCTAssertEqual(h.peer.members[alice]?.status, .suspect)
        let deadline = try XCTUnwrap(h.peer.suspicions[alice]).suspicion.deadline
        h.advance(deadline - h.now - 1)
        XCTAssertEqual(h.peer.members[alice]?.status, .suspect)
        // Nobody confirmed: a last chance (two PINGs), and dead three ping timeouts (× local
        // health) after the first.
        h.advance(1)
        XCTAssertEqual(h.peer.members[alice]?.status, .suspect)
        h.advance(150 * ms * UInt64(h.peer.membership.probing.health.score + 1) - 1)
        XCTAssertEqual(h.peer.members[alice]?.status, .suspect)
        h.advance(1)
        XCTAssertEqual(h.peer.members[alice]?.status, .dead)
    }

    func testAnsweredPingKeepsMemberAlive() {
        var h = PeerHarness()
        h.start()
        h.ping(from: alice, name: "alice")
        h.fakes[9100] = (alice, "alice")
        h.advance(10_000 * ms, silent: [])
        XCTAssertGreaterThanOrEqual(h.pings.filter { $0.target == alice }.count, 40, "pinged every period")
        XCTAssertEqual(h.peer.members[alice]?.status, .alive)
        XCTAssertTrue(h.statusChanges(to: .suspect).isEmpty)
    }

    func testIndirectProbeIsRelayed() {
        var h = PeerHarness()
        h.start()
        h.ping(from: alice, name: "alice")
        h.ping(from: bob, name: "bob", port: 9200)
        h.clearSent()
        // Bob asks us to probe Alice for him.
        h.receive(.pingRequest(Probe(probeID: 55, target: alice)), from: bob, name: "bob", port: 9200)
        guard case .ping(let relay)? = h.sentPayloads().last else { return XCTFail("no relayed ping") }
        XCTAssertEqual(relay.target, alice)
        XCTAssertNotEqual(relay.probeID & 0x8000_0000, 0, "a relay's probe id is in the upper half")
        h.receive(.ack(Ping(probeID: relay.probeID, target: alice, revoked: .empty)), from: alice, name: "alice")
        XCTAssertTrue(h.acks.contains { ack, to in ack.probeID == 55 && ack.target == alice && to == .peer(Endpoint(address: 0x7F00_0001, port: 9200)) })
        XCTAssertTrue(h.peer.relays.isEmpty, "done with")
    }

    /// Issue 16: refuting a suspicion multicasts CHANGE(alive, i + 1) once.
    func testSuspicionOfSelfIsRefutedWithHigherIncarnation() {
        var h = PeerHarness()
        h.start()
        let me = h.peer.config.id
        let rumour = MemberEntry(id: me, incarnation: 0, status: .suspect, endpoint: Endpoint(address: 1, port: 9000), name: "me")
        h.clearSent()
        h.ping(from: alice, name: "alice", gossip: [rumour])
        XCTAssertEqual(h.peer.incarnation, 1)
        XCTAssertTrue(h.events.contains(.refuted(incarnation: 1)))
        XCTAssertEqual(h.changes.map(\.0), [[MemberEntry(id: me, incarnation: 1, status: .alive, endpoint: Endpoint(address: 0, port: 9000), name: "me")]])
        XCTAssertEqual(h.changes.first?.1, .group)
    }

    func testGossipPrecedence() {
        var h = PeerHarness()
        h.start()
        h.ping(from: alice, name: "alice", incarnation: 2)
        func entry(_ status: MemberStatus, _ incarnation: UInt32) -> MemberEntry {
            MemberEntry(id: alice, incarnation: incarnation, status: status, endpoint: Endpoint(address: 0x7F00_0001, port: 9100), name: "alice")
        }
        // Stale suspicion (lower incarnation) is ignored.
        h.ping(from: bob, name: "bob", gossip: [entry(.suspect, 1)], port: 9200)
        XCTAssertEqual(h.peer.members[alice]?.status, .alive)
        // Dead at the same incarnation over alive makes it suspect (§6.1.3); over that
        // suspicion, second-hand, nothing (this peer's own timeout decides); first-hand, in
        // its declarer's CHANGE, dead.
        h.ping(from: bob, name: "bob", gossip: [entry(.dead, 2)], port: 9200)
        XCTAssertEqual(h.peer.members[alice]?.status, .suspect)
        h.ping(from: bob, name: "bob", gossip: [entry(.dead, 2)], port: 9200)
        XCTAssertEqual(h.peer.members[alice]?.status, .suspect)
        h.receive(.change([entry(.dead, 2)]), from: bob, name: "bob", port: 9200)
        XCTAssertEqual(h.peer.members[alice]?.status, .dead)
        // Alive at the same incarnation does not revive; a higher one does.
        h.ping(from: bob, name: "bob", gossip: [entry(.alive, 2)], port: 9200)
        XCTAssertEqual(h.peer.members[alice]?.status, .dead)
        h.ping(from: alice, name: "alice", incarnation: 3)
        XCTAssertEqual(h.peer.members[alice]?.status, .alive)
    }

    /// Issue 16: any datagram proves its sender alive at its header's incarnation: a suspect
    /// at the same incarnation revives, a dead member only at a higher one.
    func testAnyDatagramRevivesAtItsHeaderIncarnation() {
        var h = PeerHarness()
        h.start()
        h.ping(from: alice, name: "alice", incarnation: 4)
        h.ping(from: bob, name: "bob", gossip: [MemberEntry(id: alice, incarnation: 4, status: .suspect,
            endpoint: Endpoint(address: 0x7F00_0001, port: 9100), name: "alice")], port: 9200)
        XCTAssertEqual(h.peer.members[alice]?.status, .suspect)
        h.receive(.digestRequest(requestID: 1), from: alice, name: "alice", incarnation: 4)
        XCTAssertEqual(h.peer.members[alice]?.status, .alive)
        XCTAssertNil(h.peer.suspicions[alice])
        for _ in 0..<2 {
            h.receive(.change([MemberEntry(id: alice, incarnation: 4, status: .dead,
                endpoint: Endpoint(address: 0x7F00_0001, port: 9100), name: "alice")]), from: bob, name: "bob", port: 9200)
        }
        h.receive(.digestRequest(requestID: 2), from: alice, name: "alice", incarnation: 4)
        XCTAssertEqual(h.peer.members[alice]?.status, .dead, "dead at 4 needs a higher incarnation")
        h.receive(.digestRequest(requestID: 3), from: alice, name: "alice", incarnation: 5)
        XCTAssertEqual(h.peer.members[alice]?.status, .alive)
    }

    func testGoodbyeMeansLeftNotDeadAndIsReapedLater() {
        var h = PeerHarness()
        h.start()
        h.ping(from: alice, name: "alice")
        h.receive(.goodbye, from: alice, name: "alice")
        XCTAssertEqual(h.peer.members[alice]?.status, .left)
        h.clearSent()
        h.advance(5_000 * ms)
        XCTAssertEqual(h.peer.members[alice]?.status, .left, "left members are not probed to death")
        XCTAssertTrue(h.pings.isEmpty, "nor probed at all")
        XCTAssertTrue(h.statusChanges(to: .dead).isEmpty)
        h.advance(60_000 * ms)
        XCTAssertNil(h.peer.members[alice], "reaped")
    }

    /// Issue 16: a dead member is reaped `reapAfter` after its death, off the deadline heap.
    func testDeadMembersAreReapedAfterReapAfter() {
        var h = PeerHarness {
            $0.reapAfter = 10_000 * PeerHarness.ms
            $0.settleInterval = 0 // published at once: one never published is reaped unseen (§6.1.8)
        }
        h.start()
        h.ping(from: alice, name: "alice")
        // The first CHANGE(dead) makes alice suspect, the second dead (§6.1.3).
        for _ in 0..<2 {
            h.receive(.change([MemberEntry(id: alice, incarnation: 0, status: .dead,
                endpoint: Endpoint(address: 0x7F00_0001, port: 9100), name: "alice")]), from: bob, name: "bob", port: 9200)
        }
        XCTAssertEqual(h.peer.members[alice]?.status, .dead)
        let diedAt = h.now
        h.fakes[9200] = (bob, "bob")
        h.advance(diedAt + 10_000 * ms - h.now - 1, silent: [])
        XCTAssertNotNil(h.peer.members[alice])
        h.advance(1, silent: [])
        XCTAssertNil(h.peer.members[alice], "reaped at reapAfter")
        XCTAssertTrue(h.events.contains(.reaped(name: "alice", id: alice)))
        XCTAssertEqual(h.peer.members[bob]?.status, .alive)
    }

    func testRestartWithNewBootIDReplacesEntry() {
        // Published at once: a restart of one never published is no replacement (§6.1.8).
        var h = PeerHarness { $0.settleInterval = 0 }
        h.start()
        h.ping(from: alice, name: "alice")
        let reborn = NodeID(high: 1, low: 99)
        h.ping(from: reborn, name: "alice")
        XCTAssertNil(h.peer.members[alice])
        XCTAssertEqual(h.peer.members[reborn]?.status, .alive)
        XCTAssertTrue(h.events.contains(.replaced(name: "alice", old: alice, new: reborn)))
    }

    /// Issue 16: a peer whose own loop stalls 5 s shifts its probe and suspicion deadlines by
    /// the gap; the ACK that waited in the socket buffer still counts, nobody is suspected.
    func testStalledOwnLoopDoesNotBlameOthers() throws {
        var h = PeerHarness()
        h.start()
        let fakes = h.join(5)
        h.advance(1_000 * ms, silent: [])
        // A suspicion this peer holds keeps its remaining time too.
        h.ping(from: fakes[0], name: "f0", gossip: [h.entry(fakes[4], .suspect)], port: h.port(of: fakes[0]))
        let before = try XCTUnwrap(h.peer.suspicions[fakes[4]]).suspicion.deadline
        let eventsBefore = h.events.count
        func suspected(_ h: PeerHarness) -> [PeerEvent] {
            h.events[eventsBefore...].filter { if case .statusChanged(_, _, _, .suspect) = $0 { true } else { false } }
        }
        // One ping goes out and is not answered yet when the process freezes.
        h.clearSent()
        h.advance(200 * ms)
        let ping = try XCTUnwrap(h.pings.last)
        h.now += 5_000 * ms
        h.record(h.peer.onTick(now: h.time))
        XCTAssertTrue(h.events.contains { if case .stalled = $0 { true } else { false } })
        XCTAssertTrue(suspected(h).isEmpty, "no false suspicion after a pause")
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(h.peer.suspicions[fakes[4]]).suspicion.deadline, before + 5_000 * ms)
        // The ACK that waited in the socket buffer arrives.
        h.receive(.ack(Ping(probeID: ping.probeID, target: ping.target, revoked: .empty)), from: ping.target, name: h.name(of: ping.target), port: h.port(of: ping.target))
        h.ping(from: fakes[4], name: "f4", port: h.port(of: fakes[4]))
        h.advance(1_000 * ms, silent: [])
        XCTAssertTrue(suspected(h).isEmpty)
        XCTAssertTrue(fakes.allSatisfy { h.peer.members[$0]?.status == .alive })
    }

    /// Issue 16: one PING per period, in a round robin that reaches every member within 2n periods.
    func testOnePingPerPeriodCoversEveryMemberWithinTwoNPeriods() {
        var h = PeerHarness()
        h.start()
        let fakes = h.join(7)
        h.clearSent()
        var targets: [NodeID] = []
        for _ in 0..<40 {
            let mark = h.sent.count
            h.advance(200 * ms, silent: [])
            let sent = h.sent[mark...].compactMap { if case .ping(let ping) = $0.0.payload { ping.target } else { nil } }
            XCTAssertEqual(sent.count, 1, "one PING per period")
            targets += sent
        }
        for start in 0...(targets.count - 14) {
            XCTAssertEqual(Set(targets[start..<(start + 14)]), Set(fakes), "every member within 2n periods (window at \(start))")
        }
    }

    /// Issue 16, Protocol.md A.2 item 3: the probe order keeps no set of its ids; a member that
    /// goes dead, or leaves the view, and comes back before its turn is still in it once.
    func testAMemberBackBeforeItsTurnIsInTheProbeOrderOnce() {
        var h = PeerHarness()
        h.start()
        let fakes = h.join(7)
        var membership = h.peer.membership
        XCTAssertEqual(membership.probing.order.count, 7)
        guard var member = membership.members[fakes[0]] else { return XCTFail("no member") }
        member.status = .dead
        membership.store(member, for: fakes[0])
        member.status = .alive
        membership.store(member, for: fakes[0])
        XCTAssertEqual(membership.probing.order.count, 7, "dead and back: in once")
        membership.store(nil, for: fakes[1])
        XCTAssertEqual(membership.probeListedGone, [fakes[1]])
        guard let back = h.peer.membership.members[fakes[1]] else { return XCTFail("no member") }
        membership.store(back, for: fakes[1])
        XCTAssertEqual(membership.probing.order.count, 7, "gone and back: in once")
        XCTAssertTrue(membership.probeListedGone.isEmpty)
        XCTAssertEqual(Set(membership.probing.order.order), Set(fakes))
    }

    func testMalformedAndForeignDatagramsAreDroppedAndCounted() {
        var h = PeerHarness()
        h.start()
        h.record(h.peer.onDatagram([1, 2, 3, 4], from: Endpoint(address: 1, port: 1), now: h.time))
        XCTAssertEqual(h.peer.counters.drops["bad_magic"], 1)
        // Under four bytes there is no magic to judge (Protocol.md §5.1).
        h.record(h.peer.onDatagram([1, 2, 3], from: Endpoint(address: 1, port: 1), now: h.time))
        XCTAssertEqual(h.peer.counters.drops["truncated"], 1)
        h.record(h.peer.onDatagram(Array(Samples.encode(.goodbye).prefix(30)), from: Endpoint(address: 1, port: 1), now: h.time))
        XCTAssertEqual(h.peer.counters.drops["truncated"], 2)
        var foreign = PeerHarness { $0.cluster = "other" }
        foreign.start()
        let bytes = try! Codec().encode(Message(header: Header(sequence: 1, stamp: 1, sender: alice, incarnation: 0, replyPort: 1, cluster: "other", name: "a"), payload: .goodbye))
        h.record(h.peer.onDatagram(bytes, from: Endpoint(address: 1, port: 1), now: h.time))
        XCTAssertEqual(h.peer.counters.drops["foreign_cluster"], 1)
        XCTAssertNil(h.peer.members[alice])
    }

    /// A datagram that proves its sender alive and asks for no answer.
    func ping(_ h: PeerHarness) -> Payload { .nack(Probe(probeID: 1, target: h.peer.config.id)) }

    func testReplayedDatagramsAreDroppedWithAKey() {
        var h = PeerHarness { $0.keys = [AuthKey(Array(repeating: 3, count: 32))] }
        h.start()
        let header = Header(sequence: 5, stamp: 1, sender: alice, incarnation: 0, replyPort: 1, cluster: "starling", name: "alice")
        let bytes = try! h.codec.encode(Message(header: header, payload: ping(h)))
        h.record(h.peer.onDatagram(bytes, from: Endpoint(address: 1, port: 1), now: h.time))
        h.record(h.peer.onDatagram(bytes, from: Endpoint(address: 1, port: 1), now: h.time))
        XCTAssertEqual(h.peer.counters.drops["replay"], 1)
        var old = header
        old.sequence = 5 + 1_000
        h.record(h.peer.onDatagram(try! h.codec.encode(Message(header: old, payload: .goodbye)), from: Endpoint(address: 1, port: 1), now: h.time))
        old.sequence = 5
        old.stamp = 9
        h.record(h.peer.onDatagram(try! h.codec.encode(Message(header: old, payload: .goodbye)), from: Endpoint(address: 1, port: 1), now: h.time))
        XCTAssertEqual(h.peer.counters.drops["replay"], 2, "older than the window")
    }

    func testABatchIsHandledInOrderLikeSingleDatagrams() {
        var h = PeerHarness { $0.keys = [AuthKey(Array(repeating: 3, count: 32))] }
        h.start()
        let senders = (1...6).map { NodeID(high: 0x7000, low: UInt64($0)) }
        var datagrams = senders.enumerated().map { index, id in
            let header = Header(sequence: 1, stamp: UInt64(10 + index), sender: id, incarnation: 0, replyPort: 1, cluster: "starling", name: "n\(index)")
            return try! h.codec.encode(Message(header: header, payload: ping(h)))
        }
        datagrams.append(datagrams[2])  // a replay inside the same batch
        datagrams.append(Array(datagrams[4].dropLast()))  // a truncated tag
        let actions = Codec.withBuffers(datagrams) { buffers in
            h.peer.onDatagrams(buffers.map { ($0, Endpoint(address: 0x7F00_0001, port: 1)) }, now: h.time)
        }
        h.record(actions)
        XCTAssertEqual(senders.filter { h.peer.members[$0]?.status == .alive }.count, 6)
        XCTAssertEqual(h.peer.counters.drops["replay"], 1)
        XCTAssertEqual(h.peer.counters.drops["truncated_tag"], 1)
        XCTAssertEqual(h.peer.counters.datagramsIn, 8)
        XCTAssertEqual(h.peer.clock.value, 16, "adjusted past the highest stamp")
    }

    func testLamportClockAdjustsPastReceivedStamps() {
        var h = PeerHarness()
        h.start()
        h.receive(ping(h), from: alice, name: "alice", stamp: 1_000)
        XCTAssertEqual(h.peer.clock.value, 1_001)
        h.clearSent()
        h.advance(200 * ms)
        XCTAssertGreaterThan(h.sent.first!.0.header.stamp, 1_001)
    }
}
