import StarlingCore
import XCTest

/// Election rules with an injected clock (Protocol.md §4.3, §6.4).
final class ElectionTests: XCTestCase {
    let ms = PeerHarness.ms
    let low = NodeID(high: 0, low: 1)
    let high = NodeID(high: 0xFFFF, low: 1)

    func testStampOrderingTiesGoToLowerNodeIDAsBytes() {
        XCTAssertLessThan(Stamp(5, high), Stamp(6, low))
        XCTAssertLessThan(Stamp(5, low), Stamp(5, high))
        XCTAssertLessThan(Stamp(5, NodeID(high: 0, low: .max)), Stamp(5, NodeID(high: 1, low: 0)))
    }

    func testOneMemberElectsItselfAtOnce() {
        var h = PeerHarness.started()
        h.record(h.peer.elect("solo", now: h.time))
        XCTAssertEqual(h.peer.leader(of: "solo").id, h.peer.config.id)
        XCTAssertEqual(h.peer.leader(of: "solo").term, 1)
    }

    /// Issue 16 A.2 item 1: a peer no longer waits for every member's candidacy (joiners are
    /// silent); it decides a decision window after entering the term, with what it holds.
    func testDecidesAfterTheWindowAndLowestStampWins() {
        var h = PeerHarness.started()
        h.ping(from: low, name: "low")
        h.ping(from: high, name: "high")
        h.receive(.candidacy(Candidacy(term: 1, topic: "t")), from: high, name: "high", stamp: 3)
        h.receive(.candidacy(Candidacy(term: 1, topic: "t")), from: low, name: "low", stamp: 1_000)
        XCTAssertNil(h.peer.leader(of: "t").id, "not before the decision window")
        h.advance(h.peer.config.decisionWindow)
        XCTAssertEqual(h.peer.leader(of: "t").name, "high")
    }

    func testDecidesAtTheWindowWithoutMissingCandidacies() {
        var h = PeerHarness.started()
        h.ping(from: low, name: "low")
        h.record(h.peer.elect("t", now: h.time))
        XCTAssertNil(h.peer.leader(of: "t").id)
        h.advance(h.peer.config.decisionWindow)
        XCTAssertEqual(h.peer.leader(of: "t").id, h.peer.config.id, "decided at the window with what it held")
    }

    func testStaleTermsAreIgnored() {
        var h = PeerHarness.started()
        h.receive(.candidacy(Candidacy(term: 5, topic: "t")), from: low, name: "low", stamp: 1)
        h.advance(600 * ms)
        XCTAssertEqual(h.peer.leader(of: "t").term, 5)
        h.receive(.leader(LeaderAnnouncement(term: 4, leader: high, leaderStamp: 0, topic: "t", leaderName: "high")), from: high, name: "high")
        XCTAssertEqual(h.peer.leader(of: "t").name, "low")
    }

    /// Issue 16 A.2 item 1: the better candidate itself corrects a higher announcer (by
    /// unicast) and announces again within a window; a lower announced leader is adopted.
    func testLowerAnnouncedLeaderOfSameTermIsAdoptedAndHigherIsCorrected() {
        var h = PeerHarness.started()
        h.ping(from: low, name: "low")
        h.record(h.peer.elect("t", now: h.time))
        h.advance(h.peer.config.decisionWindow)
        let mine = h.peer.elections["t"]?.candidates[h.peer.config.id] ?? 0
        XCTAssertEqual(h.peer.leader(of: "t").id, h.peer.config.id)
        h.clearSent()
        h.receive(.leader(LeaderAnnouncement(term: 1, leader: high, leaderStamp: mine + 99, topic: "t", leaderName: "high")), from: high, name: "high", port: 9300)
        XCTAssertEqual(h.peer.leader(of: "t").id, h.peer.config.id)
        XCTAssertTrue(h.sent.contains { if case .leader(let l) = $0.0.payload, case .peer(let e) = $0.1 { l.leader == h.peer.config.id && e.port == 9300 } else { false } })
        h.clearSent()
        h.advance(h.peer.config.decisionWindow, silent: [])
        XCTAssertTrue(h.sent.contains { if case .leader(let l) = $0.0.payload, case .group = $0.1 { l.leader == h.peer.config.id } else { false } },
            "announced again to the group within a window")
        h.receive(.leader(LeaderAnnouncement(term: 1, leader: high, leaderStamp: 2, topic: "t", leaderName: "high")), from: high, name: "high")
        XCTAssertEqual(h.peer.leader(of: "t").name, "high")
    }

    func testLeaderDeathStartsNextTerm() {
        var h = PeerHarness.started()
        h.ping(from: low, name: "low")
        h.receive(.leader(LeaderAnnouncement(term: 1, leader: low, leaderStamp: 1, topic: "t", leaderName: "low")), from: low, name: "low")
        h.clearSent()
        h.receive(.goodbye, from: low, name: "low")
        // The next term starts in the timer pass due at once (within the topic budget, §6.6).
        XCTAssertLessThanOrEqual(h.peer.nextDeadline, h.now)
        h.advance(0)
        XCTAssertTrue(h.sentPayloads().contains(.candidacy(Candidacy(term: 2, topic: "t"))))
        XCTAssertEqual(h.peer.leader(of: "t").id, h.peer.config.id)
    }

    /// Issue 14 item 12 (the fuzzer's storm): leaders of many topics gone at once re-elect
    /// within the per-pass topic budget (§6.6), not all in the datagram or pass that saw them go.
    /// (Every peer is an elector of every topic here, so all the starts fall due together.)
    func testLeadersGoneTogetherReelectWithinTheTopicBudget() {
        var h = PeerHarness.started { $0.electors = 64 }
        let topics = 48
        for index in 0..<topics {
            let leader = NodeID(high: 1, low: UInt64(index))
            h.ping(from: leader, name: "l\(index)")
            h.receive(.leader(LeaderAnnouncement(term: 1, leader: leader, leaderStamp: 1, topic: "t\(index)", leaderName: "l\(index)")),
                from: leader, name: "l\(index)")
        }
        h.clearSent()
        for index in 0..<topics { h.receive(.goodbye, from: NodeID(high: 1, low: UInt64(index)), name: "l\(index)") }
        XCTAssertFalse(h.sentPayloads().contains { if case .candidacy = $0 { true } else { false } })
        h.advance(0)
        let first = h.sentPayloads().filter { if case .candidacy = $0 { true } else { false } }.count
        XCTAssertEqual(first, 16)
        h.advance(10 * ms)
        for index in 0..<topics { XCTAssertEqual(h.peer.leader(of: "t\(index)").term, 2, "topic t\(index)") }
    }

    /// Without multicast a broadcast goes to every member: one input queues at most
    /// `sendBytesPerInput` (§6.6), the rest is counted as `send_budget`.
    func testUnicastBroadcastsStayWithinTheSendBudget() {
        var h = PeerHarness { config in
            config.multicast = false
            config.limits.sendBytesPerInput = 20_000
        }
        h.start()
        h.advance(300 * ms)
        for index in 0..<400 {
            h.receive(.ping(Ping(probeID: 1, target: h.peer.config.id, revoked: h.peer.revoked.digest)),
                from: NodeID(high: 2, low: UInt64(index)), name: "m\(index)", port: UInt16(10_000 + index))
        }
        h.clearSent()
        h.record(h.peer.elect("t", now: h.time))
        let bytes = h.sent.reduce(0) { $0 + ((try? h.codec.encode($1.0))?.count ?? 0) }
        XCTAssertLessThanOrEqual(bytes, 20_000)
        XCTAssertGreaterThan(h.sent.count, 0)
        XCTAssertGreaterThan(h.peer.counters.drops["send_budget"] ?? 0, 0)
    }

    func testQuorumNeedsMajorityAndSaysSo() {
        var h = PeerHarness.started { $0.quorum = 3 }
        h.record(h.peer.elect("q", now: h.time))
        h.advance(501 * ms)
        XCTAssertNil(h.peer.leader(of: "q").id)
        XCTAssertTrue(h.events.contains(.noQuorum(topic: "q", term: 1, have: 1, need: 2)))
    }

    func testTwoElectionsStartedAtOnceConvergeOnOneTerm() {
        var h = PeerHarness.started()
        h.ping(from: low, name: "low")
        h.record(h.peer.elect("t", now: h.time))
        // The other member started term 1 at the same moment.
        h.receive(.candidacy(Candidacy(term: 1, topic: "t")), from: low, name: "low", stamp: 2)
        h.advance(h.peer.config.decisionWindow)
        XCTAssertEqual(h.peer.leader(of: "t").term, 1)
        XCTAssertEqual(h.peer.leader(of: "t").name, "low")
    }
}
