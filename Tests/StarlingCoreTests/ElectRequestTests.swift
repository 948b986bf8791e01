@testable import StarlingCore
import XCTest

/// `elect` sent to every agent (issue 16: an election costs O(1) group datagrams at any size)
/// and the quick repeats of a new leader's LEADER (issue 21: agreement under loss in
/// milliseconds), Protocol.md §6.4.
final class ElectRequestTests: XCTestCase {
    let ms = PeerHarness.ms
    let cli = NodeID(high: 0xC11, low: 3)

    /// A peer that is not one of the term's electors answers a group `elect` by arming a
    /// staggered start, which the electors' CANDIDACY disarms; a request naming it starts at once.
    func testAGroupElectStartsOnlyOnTheElectors() {
        for topic in (0..<40).map({ "jobs-\($0)" }) {
            var h = PeerHarness()
            h.start()
            let members = h.join(20)
            h.clearSent()
            let rank = h.peer.leadership.startRank(topic: topic, term: 1, view: h.peer.membership.view)
            elect(&h, topic, target: "", id: 1)
            let sent = candidacies(h)
            if let rank, rank < h.peer.leadership.electorCount {
                XCTAssertEqual(sent, 1, "\(topic): an elector starts at once")
                continue
            }
            XCTAssertEqual(sent, 0, "\(topic): not an elector: no candidacy yet")
            // Any member's CANDIDACY of the term (the electors' in practice) disarms the start.
            let elector = members[0]
            h.receive(.candidacy(Candidacy(term: 1, topic: topic)), from: elector, name: h.name(of: elector), stamp: 1, port: h.port(of: elector))
            h.advance(1_000 * ms)
            XCTAssertEqual(candidacies(h), 0, "\(topic): the elector's candidacy disarmed the start")
            XCTAssertEqual(h.peer.leader(of: topic).id, elector)
            // Naming this agent alone starts a term at once.
            h.clearSent()
            elect(&h, topic, target: "me", id: 2)
            XCTAssertEqual(candidacies(h), 1)
            return
        }
        XCTFail("no topic found whose electors exclude this peer")
    }

    /// The winner repeats LEADER one, two and four decision windows after deciding, then every
    /// re-announce interval.
    func testANewLeaderRepeatsItsAnnouncementQuickly() {
        var h = PeerHarness()
        h.start()
        _ = h.join(3)
        h.clearSent()
        h.record(h.peer.elect("jobs", now: h.time))
        let start = h.now
        var times: [UInt64] = []
        for _ in 0..<2_100 {
            h.advance(1 * ms)
            let leaders = h.sentPayloads().filter { if case .leader = $0 { true } else { false } }.count
            times += Array(repeating: (h.now - start) / ms, count: leaders)
            h.clearSent()
        }
        let window = h.peer.config.decisionWindow / ms
        XCTAssertEqual(times, [window, 2 * window, 4 * window, 8 * window, 8 * window + 2_000])
    }

    private func elect(_ h: inout PeerHarness, _ topic: String, target: String, id: UInt32) {
        h.receive(.controlRequest(ControlRequest(requestID: id, command: "elect", target: target, args: [topic])), from: cli, name: "cli", port: 20_000)
    }

    private func candidacies(_ h: PeerHarness) -> Int {
        h.sentPayloads().filter { if case .candidacy = $0 { true } else { false } }.count
    }
}
