import Foundation
import StarlingCore
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
}
