import Foundation
@testable import StarlingCore
import XCTest

/// Replays the stateful Peer fuzz target's inputs (issue 14, "Tests and checks": the stateful
/// fuzz target runs on its corpus in CI). Tests/Fuzz/peer-corpus holds the seeds and what the
/// fuzzer kept; Tests/Fuzz/peer-regressions holds every input that ever broke an invariant or
/// trapped, named after the issue item it found.
final class PeerFuzzCorpusTests: XCTestCase {
    static let fuzzFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz")

    func inputs(_ folder: String) throws -> [(String, [UInt8])] {
        let url = Self.fuzzFolder.appendingPathComponent(folder)
        return try FileManager.default.contentsOfDirectory(atPath: url.path).sorted().map { name in
            (name, [UInt8](try Data(contentsOf: url.appendingPathComponent(name))))
        }
    }

    func testCorpusKeepsEveryInvariant() throws {
        let corpus = try inputs("peer-corpus")
        XCTAssertGreaterThan(corpus.count, 34)
        for (name, bytes) in corpus {
            let report = PeerFuzzInterpreter.run(bytes)
            XCTAssertNil(report.violation, "Tests/Fuzz/peer-corpus/\(name)")
        }
    }

    /// Issue 14 items 2, 3, 4, 6, 9 and the others named in the file names: each input broke the
    /// core on the tree the issue was filed against.
    func testRegressionsKeepEveryInvariant() throws {
        let regressions = try inputs("peer-regressions")
        XCTAssertFalse(regressions.isEmpty)
        for (name, bytes) in regressions {
            let report = PeerFuzzInterpreter.run(bytes)
            XCTAssertNil(report.violation, "Tests/Fuzz/peer-regressions/\(name)")
        }
    }

    /// The interpreter itself: its structured datagrams of all 19 types pass framing and the
    /// tag check (with a key and without), so the fuzzer reaches the protocol logic.
    func testSeedsDeliverEveryMessageTypeWithAndWithoutAKey() throws {
        let seeds = try inputs("peer-corpus").filter { $0.0.hasPrefix("seed-") }
        for label in ["plain", "keyed-pair"] {
            for type in MessageType.allCases {
                guard let (_, bytes) = seeds.first(where: { $0.0 == "seed-\(label)-\(type.name)" }) else {
                    XCTFail("no seed-\(label)-\(type.name)")
                    continue
                }
                let report = PeerFuzzInterpreter.run(bytes)
                XCTAssertTrue(report.accepted.contains { $0.step == 1 && $0.type == type }, "\(label) \(type.name): \(report.accepted)")
            }
        }
    }

    /// Issue 16 (found by the fuzzer on 5c824e1, Tests/Fuzz/peer-regressions/
    /// issue16-probe-without-helpers-spins): a probe past its ping timeout with no helper to ask
    /// kept that timeout as its deadline, so a peer with one member asked for a tick at every
    /// instant until the period's end (a busy loop in the agent).
    func testProbeWithoutHelpersWaitsForItsVerdict() {
        let settings = Probing.Settings(period: .millis(200), pingTimeout: .millis(50), helpers: 3)
        var probing = Probing(settings: settings, start: 0)
        var rng = SplitMix64(seed: 16)
        let target = NodeID(high: 16, low: 1)
        probing.add(target, rng: &rng)
        let endpoint = Endpoint(address: 0x7F00_0001, port: 9_001)
        let sent = probing.tick(now: .millis(200), rng: &rng, endpoint: { _ in endpoint }, helpers: { _, _ in [] })
        XCTAssertEqual(sent.count, 1, "the period's PING")
        let late: UInt64 = .millis(260)
        let asked = probing.tick(now: late, rng: &rng, endpoint: { _ in endpoint }, helpers: { _, _ in [] })
        XCTAssertTrue(asked.isEmpty, "no helper, no PING_REQ: \(asked)")
        XCTAssertGreaterThan(probing.nextDeadline, late)
    }

    /// Issue 16 (found while porting the flood test; the fuzz invariant `false_stall` catches it
    /// too): once local health had slowed a peer's own period past the stall limit (three
    /// unscaled periods), a quiet peer took every wait between its own timers for a stall of its
    /// loop and moved all its deadlines on by it, so its suspicions never ran out: 5,000 forged
    /// members heard once were all still live ten minutes later.
    func testQuietPeerWithPoorHealthStillDeclaresSilentMembersDead() throws {
        var peer = Peer(config: PeerConfig(name: "quiet", id: NodeID(high: 16, low: 2)))
        let start: UInt64 = 1_000_000_000
        var now = start
        func at(_ nanos: UInt64) -> Now { Now(nanos: nanos, wallMillis: 1_800_000_000_000 + nanos / 1_000_000) }
        _ = peer.start(now: at(now))
        // Twenty members heard once (a PING each), then never again: every probe goes unanswered
        // and no helper NACKs, so the peer's local health climbs to its maximum.
        for index in 0..<20 {
            let header = Header(sequence: 1, stamp: 1, sender: NodeID(high: 0xF, low: UInt64(index)), incarnation: 0,
                replyPort: 9_100, cluster: peer.config.cluster, name: "silent-\(index)")
            let ping = Payload.ping(Ping(probeID: 1, target: peer.config.id, revoked: .empty))
            _ = peer.onDatagram(try Codec().encode(Message(header: header, payload: ping)), from: Endpoint(address: 0x7F00_0001, port: 9_100), now: at(now))
        }
        var stalls = 0
        while now < start + .millis(120_000) {
            // Woken exactly when it asked, as an event loop with nothing else to do would.
            now = max(now + 1, peer.nextDeadline)
            for case .emit(.stalled) in peer.onTick(now: at(now)) { stalls += 1 }
        }
        XCTAssertEqual(stalls, 0, "a peer woken when it asked is not stalled")
        let live = peer.members.values.filter(\.isLive).map(\.name).sorted()
        XCTAssertTrue(live.isEmpty, "still live after 120 s of silence: \(live)")
    }
}
