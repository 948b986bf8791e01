import StarlingCore
import XCTest

/// Membership state machine with an injected clock (Protocol.md §6.1).
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
        h.receive(.announce(Beat(intervalMillis: 150, memberCount: 1, revoked: .empty, gossip: [])), from: alice, name: "alice")
        XCTAssertTrue(h.sent.contains { if case .heartbeat = $0.0.payload, case .peer(let e) = $0.1 { e.port == 9100 } else { false } },
            "a newcomer's announce must be answered by unicast")
        XCTAssertEqual(h.peer.members[alice]?.status, .alive)
    }

    func testSilenceLeadsToSuspectThenProbesThenDead() {
        var h = PeerHarness()
        h.start()
        h.beat(from: alice, name: "alice")
        h.advance(4 * 150 * ms - 1)
        XCTAssertEqual(h.peer.members[alice]?.status, .alive)
        h.clearSent()
        h.advance(2 * ms)
        XCTAssertEqual(h.peer.members[alice]?.status, .suspect)
        XCTAssertTrue(h.sentPayloads().contains { if case .probe(let p) = $0 { p.target == alice } else { false } })
        h.advance(290 * ms)
        XCTAssertEqual(h.peer.members[alice]?.status, .suspect)
        let probes = h.sentPayloads().filter { if case .probe = $0 { true } else { false } }
        XCTAssertGreaterThanOrEqual(probes.count, 5, "retries while suspect")
        h.advance(11 * ms)
        XCTAssertEqual(h.peer.members[alice]?.status, .dead)
    }

    func testAnsweredProbeKeepsMemberAlive() {
        var h = PeerHarness()
        h.start()
        h.beat(from: alice, name: "alice")
        h.advance(601 * ms)
        guard case .probe(let probe)? = h.sentPayloads().last(where: { if case .probe = $0 { true } else { false } }) else {
            return XCTFail("no probe sent")
        }
        h.receive(.probeAck(probe), from: alice, name: "alice")
        XCTAssertEqual(h.peer.members[alice]?.status, .alive)
        h.advance(400 * ms)
        XCTAssertNotEqual(h.peer.members[alice]?.status, .dead)
    }

    func testIndirectProbeIsRelayed() {
        var h = PeerHarness()
        h.start()
        h.beat(from: alice, name: "alice")
        h.beat(from: bob, name: "bob")
        h.clearSent()
        // Bob asks us to probe Alice for him.
        h.receive(.probe(Probe(probeID: 55, target: alice)), from: bob, name: "bob", port: 9200)
        guard case .probe(let relay)? = h.sentPayloads().last else { return XCTFail("no relayed probe") }
        XCTAssertEqual(relay.target, alice)
        h.receive(.probeAck(relay), from: alice, name: "alice")
        XCTAssertTrue(h.sent.contains { if case .probeAck(let ack) = $0.0.payload, case .peer(let e) = $0.1 { ack.probeID == 55 && e.port == 9200 } else { false } })
    }

    func testSuspicionOfSelfIsRefutedWithHigherIncarnation() {
        var h = PeerHarness()
        h.start()
        let me = h.peer.config.id
        let rumour = MemberEntry(id: me, incarnation: 0, status: .suspect, endpoint: Endpoint(address: 1, port: 9000), intervalMillis: 150, name: "me")
        h.clearSent()
        h.beat(from: alice, name: "alice", gossip: [rumour])
        XCTAssertEqual(h.peer.incarnation, 1)
        XCTAssertTrue(h.events.contains(.refuted(incarnation: 1)))
        XCTAssertTrue(h.sent.contains { if case .heartbeat = $0.0.payload { $0.0.header.incarnation == 1 } else { false } })
    }

    func testGossipPrecedence() {
        var h = PeerHarness()
        h.start()
        h.beat(from: alice, name: "alice", incarnation: 2)
        func entry(_ status: MemberStatus, _ incarnation: UInt32) -> MemberEntry {
            MemberEntry(id: alice, incarnation: incarnation, status: status, endpoint: Endpoint(address: 0x7F00_0001, port: 9100), intervalMillis: 150, name: "alice")
        }
        // Stale suspicion (lower incarnation) is ignored.
        h.advance(200 * ms)
        h.beat(from: bob, name: "bob", gossip: [entry(.suspect, 1)])
        XCTAssertEqual(h.peer.members[alice]?.status, .alive)
        // Dead at the same incarnation wins over alive.
        h.beat(from: bob, name: "bob", gossip: [entry(.dead, 2)])
        XCTAssertEqual(h.peer.members[alice]?.status, .dead)
        // Alive at the same incarnation does not revive; a higher one does.
        h.beat(from: bob, name: "bob", gossip: [entry(.alive, 2)])
        XCTAssertEqual(h.peer.members[alice]?.status, .dead)
        h.beat(from: alice, name: "alice", incarnation: 3)
        XCTAssertEqual(h.peer.members[alice]?.status, .alive)
    }

    func testGoodbyeMeansLeftNotDeadAndIsReapedLater() {
        var h = PeerHarness()
        h.start()
        h.beat(from: alice, name: "alice")
        h.receive(.goodbye, from: alice, name: "alice")
        XCTAssertEqual(h.peer.members[alice]?.status, .left)
        h.advance(5_000 * ms)
        XCTAssertEqual(h.peer.members[alice]?.status, .left, "left members are not probed to death")
        XCTAssertTrue(h.statusChanges(to: .dead).isEmpty)
        h.advance(60_000 * ms)
        XCTAssertNil(h.peer.members[alice], "reaped")
    }

    func testRestartWithNewBootIDReplacesEntry() {
        var h = PeerHarness()
        h.start()
        h.beat(from: alice, name: "alice")
        let reborn = NodeID(high: 1, low: 99)
        h.beat(from: reborn, name: "alice")
        XCTAssertNil(h.peer.members[alice])
        XCTAssertEqual(h.peer.members[reborn]?.status, .alive)
        XCTAssertTrue(h.events.contains(.replaced(name: "alice", old: alice, new: reborn)))
    }

    func testStalledOwnLoopDoesNotBlameOthers() {
        var h = PeerHarness()
        h.start()
        h.beat(from: alice, name: "alice")
        h.advance(100 * ms)
        // The process is frozen for 5 s: no timer ran. When it wakes, Alice's silence is ours.
        h.now += 5_000 * ms
        h.record(h.peer.onTick(now: h.time))
        XCTAssertEqual(h.peer.members[alice]?.status, .alive)
        XCTAssertTrue(h.events.contains { if case .stalled = $0 { true } else { false } })
        // Alice's heartbeats that waited in the socket buffer arrive; she stays alive.
        h.beat(from: alice, name: "alice")
        h.advance(300 * ms)
        XCTAssertEqual(h.peer.members[alice]?.status, .alive)
    }

    func testEachSenderIsJudgedByItsOwnInterval() {
        var h = PeerHarness()
        h.start()
        h.beat(from: alice, name: "alice", interval: 1_000)
        h.advance(3_000 * ms)
        XCTAssertEqual(h.peer.members[alice]?.status, .alive, "a 1 s sender is not suspect after 3 s")
        h.advance(1_100 * ms)
        XCTAssertEqual(h.peer.members[alice]?.status, .suspect)
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

    func testReplayedDatagramsAreDroppedWithAKey() {
        var h = PeerHarness { $0.keys = [AuthKey(Array(repeating: 3, count: 32))] }
        h.start()
        let header = Header(sequence: 5, stamp: 1, sender: alice, incarnation: 0, replyPort: 1, cluster: "starling", name: "alice")
        let bytes = try! h.codec.encode(Message(header: header, payload: .heartbeat(Beat(intervalMillis: 150, memberCount: 1, revoked: .empty, gossip: []))))
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
            return try! h.codec.encode(Message(header: header, payload: .heartbeat(Beat(intervalMillis: 150, memberCount: 1, revoked: .empty, gossip: []))))
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
        h.receive(.heartbeat(Beat(intervalMillis: 150, memberCount: 1, revoked: .empty, gossip: [])), from: alice, name: "alice", stamp: 1_000)
        XCTAssertEqual(h.peer.clock.value, 1_001)
        h.clearSent()
        h.advance(200 * ms)
        XCTAssertGreaterThan(h.sent.first!.0.header.stamp, 1_001)
    }
}
