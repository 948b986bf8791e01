@testable import StarlingCore
import XCTest

/// Issue 16, Protocol.md appendix A.2 item 1 ("Elections at size", §6.4): silent joins,
/// electors on the ring, staggered starts, the decision window, and votes by unicast in
/// quorum mode — with an injected clock.
final class ElectionAtSizeTests: XCTestCase {
    let ms = PeerHarness.ms
    let low = NodeID(high: 0, low: 1)
    let high = NodeID(high: 0xFFFF, low: 1)
    let window = PeerConfig(name: "x", id: NodeID(high: 0, low: 9)).decisionWindow

    func candidacies(_ h: PeerHarness, _ topic: String) -> [Candidacy] {
        h.sentPayloads().compactMap { if case .candidacy(let c) = $0, c.topic == topic { c } else { nil } }
    }

    /// Issue 16 A.2 item 1: a peer that enters a term on hearing a CANDIDACY sends none (its
    /// clock is past that stamp, so its own could never win) and no LEADER unless it wins.
    func testJoiningATermIsSilent() {
        var h = PeerHarness.started()
        h.ping(from: low, name: "low")
        h.clearSent()
        h.receive(.candidacy(Candidacy(term: 4, topic: "t")), from: low, name: "low", stamp: 7)
        XCTAssertEqual(h.peer.elections["t"]?.term, 4, "entered the term")
        h.advance(600 * ms, silent: [])
        XCTAssertTrue(candidacies(h, "t").isEmpty, "a joiner sends no CANDIDACY")
        XCTAssertFalse(h.sentPayloads().contains { if case .leader = $0 { true } else { false } })
        XCTAssertEqual(h.peer.leader(of: "t").name, "low")
    }

    /// Issue 16 A.2 item 1: an `elect` request is a spontaneous start: one CANDIDACY at once.
    func testElectRequestStartsAtOnce() {
        var h = PeerHarness.started()
        _ = h.join(5)
        h.clearSent()
        h.record(h.peer.elect("t", now: h.time))
        XCTAssertEqual(candidacies(h, "t").map(\.term), [1])
    }

    /// Issue 16 A.2 item 1: the decision comes one window after entering the term, with the
    /// candidacies held then; a lower candidacy arriving later still wins, a higher one does not.
    func testDecisionWindowAndLateLowerCandidacy() {
        var h = PeerHarness.started()
        h.ping(from: low, name: "low")
        h.ping(from: high, name: "high")
        h.receive(.candidacy(Candidacy(term: 1, topic: "t")), from: high, name: "high", stamp: 50)
        h.advance(window - 1)
        XCTAssertNil(h.peer.leader(of: "t").id, "still inside the window")
        h.advance(1)
        XCTAssertEqual(h.peer.leader(of: "t").name, "high")
        h.receive(.candidacy(Candidacy(term: 1, topic: "t")), from: low, name: "low", stamp: 60)
        XCTAssertEqual(h.peer.leader(of: "t").name, "high", "a higher late candidacy changes nothing")
        h.receive(.candidacy(Candidacy(term: 1, topic: "t")), from: low, name: "low", stamp: 40)
        XCTAssertEqual(h.peer.leader(of: "t").name, "low", "a lower late candidacy still wins")
    }

    /// A peer with 20 members, all led on three topics by one of them; the leader then leaves.
    /// Returns the harness and, per topic, this peer's rank on the ring from the term-2 key.
    func leaderLeaves(topics: [String]) -> (PeerHarness, [String: Int?]) {
        var h = PeerHarness.started()
        let members = h.join(20)
        let leader = members[0]
        for topic in topics {
            h.receive(.leader(LeaderAnnouncement(term: 1, leader: leader, leaderStamp: 1, topic: topic, leaderName: "f0")),
                from: leader, name: "f0", port: h.port(of: leader))
        }
        h.clearSent()
        h.receive(.goodbye, from: leader, name: "f0", port: h.port(of: leader))
        let ring = Ring(members.dropFirst() + [h.peer.config.id])
        var ranks: [String: Int?] = [:]
        for topic in topics {
            ranks[topic] = ring.successors(of: Elections.electorKey(topic: topic, term: 2), count: 12).firstIndex(of: h.peer.config.id)
        }
        return (h, ranks)
    }

    /// Topics for which this peer (among 20 members and the leader gone) is an elector, in the
    /// second tier, and outside every tier.
    func topicsByRank() -> (elector: String, second: String, outside: String) {
        let me = PeerHarness().peer.config.id
        let members = (0..<20).map { NodeID(high: 0x900, low: UInt64($0)) }.dropFirst()
        let ring = Ring(members + [me])
        func rank(_ topic: String) -> Int? { ring.successors(of: Elections.electorKey(topic: topic, term: 2), count: 12).firstIndex(of: me) }
        let names = (0..<500).map { "topic-\($0)" }
        return (names.first { (rank($0) ?? 99) < 3 }!, names.first { (3..<6).contains(rank($0) ?? 99) }!, names.first { rank($0) == nil }!)
    }

    /// Issue 16 A.2 item 1: after a leader loss only the 3 electors (first on the ring from
    /// the key of (topic, term)) start at once; the next tier starts a backoff (4 windows)
    /// later, the rest after every tier, at a random moment.
    func testElectorsOnTheRingStartAtOnceOthersStagger() {
        let (elector, second, outside) = topicsByRank()
        let (setUp, ranks) = leaderLeaves(topics: [elector, second, outside])
        var h = setUp
        XCTAssertLessThan(ranks[elector]!!, 3)
        XCTAssertNil(ranks[outside]!, "the peer's ring is the one the topics were chosen on")
        h.advance(0, silent: [])
        XCTAssertEqual(candidacies(h, elector).map(\.term), [2], "an elector starts in the next timer pass")
        XCTAssertTrue(candidacies(h, second).isEmpty)
        XCTAssertTrue(candidacies(h, outside).isEmpty)
        let backoff = 4 * window
        h.advance(backoff - 1, silent: [])
        XCTAssertTrue(candidacies(h, second).isEmpty, "the second tier waits one backoff")
        h.advance(1, silent: [])
        XCTAssertEqual(candidacies(h, second).map(\.term), [2])
        h.advance(3 * backoff - 1, silent: [])
        XCTAssertTrue(candidacies(h, outside).isEmpty, "beyond the tiers: not before 4 backoffs")
        h.advance(4 * backoff, silent: [])
        XCTAssertEqual(candidacies(h, outside).map(\.term), [2], "… but within 8")
    }

    /// Issue 16 A.2 item 1: a staggered start is disarmed by a CANDIDACY of the term (or a
    /// LEADER) arriving first: the peer joins silently.
    func testStaggeredStartIsSuppressedByAnArrivingCandidacy() {
        let (_, second, outside) = topicsByRank()
        var h = leaderLeaves(topics: [second, outside]).0
        let other = NodeID(high: 0x900, low: 5)
        h.advance(10 * ms, silent: [])
        h.receive(.candidacy(Candidacy(term: 2, topic: second)), from: other, name: "f5", stamp: 3, port: h.port(of: other))
        h.receive(.leader(LeaderAnnouncement(term: 2, leader: other, leaderStamp: 3, topic: outside, leaderName: "f5")),
            from: other, name: "f5", port: h.port(of: other))
        h.advance(1_000 * ms, silent: [])
        XCTAssertTrue(candidacies(h, second).isEmpty)
        XCTAssertTrue(candidacies(h, outside).isEmpty)
        XCTAssertEqual(h.peer.leader(of: second).name, "f5")
        XCTAssertEqual(h.peer.leader(of: outside).name, "f5")
    }

    /// Issue 16 A.2 item 1: when every candidate of a term is gone before the decision, the
    /// peer waits until the election timeout, then starts the next term (staggered).
    func testEveryCandidateGoneStartsTheNextTerm() {
        var h = PeerHarness.started()
        h.ping(from: low, name: "low")
        h.receive(.candidacy(Candidacy(term: 1, topic: "t")), from: low, name: "low", stamp: 5)
        h.receive(.goodbye, from: low, name: "low")
        h.advance(499 * ms)
        XCTAssertNil(h.peer.leader(of: "t").id)
        XCTAssertTrue(candidacies(h, "t").isEmpty)
        h.advance(1 * ms)
        XCTAssertEqual(candidacies(h, "t").map(\.term), [2], "alone on the ring: the elector")
        XCTAssertEqual(h.peer.leader(of: "t").id, h.peer.config.id)
    }

    /// Issue 16 A.2 item 1: only the better candidate corrects a higher announcer; a peer
    /// that merely holds the better candidacy keeps it and says nothing (every peer holding it
    /// would otherwise answer the announcer at once).
    func testOnlyTheBetterCandidateCorrects() {
        var h = PeerHarness.started()
        h.ping(from: low, name: "low")
        h.receive(.candidacy(Candidacy(term: 1, topic: "t")), from: low, name: "low", stamp: 5)
        h.advance(window)
        h.clearSent()
        h.receive(.leader(LeaderAnnouncement(term: 1, leader: high, leaderStamp: 9, topic: "t", leaderName: "high")), from: high, name: "high", port: 9300)
        XCTAssertEqual(h.peer.leader(of: "t").name, "low")
        XCTAssertFalse(h.sentPayloads().contains { if case .leader = $0 { true } else { false } })
    }

    // MARK: Quorum mode

    /// Issue 16 A.2 item 1: in quorum mode a peer votes once per term, for the best candidacy
    /// it holds at the window, by unicast to that candidate; a better candidacy arriving later,
    /// or the term entered again, gets no second vote.
    func testQuorumVotesOncePerTermByUnicast() {
        var h = PeerHarness.started { $0.quorum = 3 }
        let members = h.join(2)
        let (a, b) = (members[0], members[1])
        h.receive(.candidacy(Candidacy(term: 1, topic: "q")), from: a, name: "f0", stamp: 50, port: h.port(of: a))
        h.clearSent()
        h.advance(window, silent: [])
        let votes = h.sent.compactMap { if case .vote(let v) = $0.0.payload { (v, $0.1) } else { nil } }
        XCTAssertEqual(votes.count, 1)
        XCTAssertEqual(votes.first?.0.candidate, a)
        XCTAssertEqual(votes.first?.1, .peer(Endpoint(address: PeerHarness.loopback, port: h.port(of: a))), "by unicast to the candidate")
        h.clearSent()
        h.receive(.candidacy(Candidacy(term: 1, topic: "q")), from: b, name: "f1", stamp: 40, port: h.port(of: b))
        h.advance(600 * ms, silent: [])
        // The voting timed out: idle in term 1 with a start armed. The term entered again:
        h.receive(.candidacy(Candidacy(term: 1, topic: "q")), from: b, name: "f1", stamp: 40, port: h.port(of: b))
        h.advance(window, silent: [])
        XCTAssertFalse(h.sentPayloads().contains { if case .vote(let v) = $0 { v.term == 1 } else { false } }, "one vote per term")
    }

    /// Issue 16 A.2 item 1: a candidate with votes from a majority (its own included) leads and
    /// announces; a vote for another stamp, or the same voter twice, does not count.
    func testQuorumCandidateLeadsOnAMajorityOfVotes() {
        var h = PeerHarness.started { $0.quorum = 5 }
        let members = h.join(4)
        h.record(h.peer.elect("q", now: h.time))
        let stamp = h.peer.elections["q"]?.candidates[h.peer.config.id] ?? 0
        h.advance(window, silent: [])
        XCTAssertFalse(h.sentPayloads().contains { if case .vote = $0 { true } else { false } }, "its own vote is not sent")
        func vote(from id: NodeID, stamp: UInt64) {
            h.receive(.vote(Vote(term: 1, candidate: h.peer.config.id, candidateStamp: stamp, topic: "q")),
                from: id, name: h.name(of: id), port: h.port(of: id))
        }
        vote(from: members[0], stamp: stamp)
        vote(from: members[0], stamp: stamp)
        vote(from: members[1], stamp: stamp + 1)
        XCTAssertNil(h.peer.leader(of: "q").id, "2 distinct valid votes of 3 needed")
        h.clearSent()
        vote(from: members[2], stamp: stamp)
        XCTAssertEqual(h.peer.leader(of: "q").id, h.peer.config.id)
        XCTAssertTrue(h.sent.contains { if case .leader(let l) = $0.0.payload, case .group = $0.1 { l.leader == h.peer.config.id } else { false } })
    }

    /// Issue 16 A.2 item 1: in quorum mode the announced leader of the term is the one holding
    /// a majority: it is followed even when a better candidacy is held, and not corrected.
    func testQuorumFollowsTheAnnouncedLeaderOfTheTerm() {
        var h = PeerHarness.started { $0.quorum = 3 }
        let members = h.join(2)
        h.receive(.candidacy(Candidacy(term: 1, topic: "q")), from: members[0], name: "f0", stamp: 5, port: h.port(of: members[0]))
        h.clearSent()
        h.receive(.leader(LeaderAnnouncement(term: 1, leader: members[1], leaderStamp: 9, topic: "q", leaderName: "f1")),
            from: members[1], name: "f1", port: h.port(of: members[1]))
        XCTAssertEqual(h.peer.leader(of: "q").name, "f1")
        XCTAssertFalse(h.sentPayloads().contains { if case .leader = $0 { true } else { false } })
    }

    /// Issue 16 A.2 item 1: "no quorum" is the live view's size, since joiners are silent.
    func testQuorumCountsTheViewNotCandidacies() {
        var h = PeerHarness.started { $0.quorum = 7 }
        let members = h.join(2)
        h.receive(.candidacy(Candidacy(term: 1, topic: "q")), from: members[0], name: "f0", stamp: 5, port: h.port(of: members[0]))
        h.advance(window, silent: [])
        XCTAssertFalse(h.sentPayloads().contains { if case .vote = $0 { true } else { false } }, "no vote without a quorum in view")
        XCTAssertTrue(h.events.contains(.noQuorum(topic: "q", term: 1, have: 3, need: 4)))
    }
}
