@testable import StarlingCore
import XCTest

/// The answer budget's table of destinations when it is full (Protocol.md §6.6).
final class AnswerBudgetTests: XCTestCase {
    let second: UInt64 = 1_000_000_000

    func budget(destinations: Int) -> AnswerBudget {
        var limits = PeerConfig.Limits()
        limits.answerDestinations = destinations
        limits.answerBytesBurst = 1_000
        limits.answerBytesPerSecond = 100
        return AnswerBudget(limits: limits, now: 0)
    }

    func endpoint(_ n: UInt32) -> Endpoint { Endpoint(address: 0x7F00_0000 + n, port: 7000) }

    /// Buckets refilled to the brim equal fresh ones: a full table forgets them all at once,
    /// and the destinations still owed something stay.
    func testAFullTableForgetsEveryBucketBackAtTheBrimAtOnce() {
        var answers = budget(destinations: 4)
        answers.charge(900, to: endpoint(1), now: 0)
        for n: UInt32 in 2...4 { answers.charge(10, to: endpoint(n), now: 0) }
        // Half a second later (before the sweep of the next test) endpoints 2–4 are back at
        // 1,000 tokens, endpoint 1 at 150.
        let half = second / 2
        answers.charge(10, to: endpoint(5), now: half)
        XCTAssertEqual(Set(answers.perDestination.keys), [endpoint(1), endpoint(5)])
        XCTAssertTrue(answers.allows(endpoint(1), now: half), "150 tokens left")
        answers.charge(150, to: endpoint(1), now: half)
        XCTAssertFalse(answers.allows(endpoint(1), now: half), "the owed destination kept its debt")
        for n: UInt32 in 6...7 { answers.charge(10, to: endpoint(n), now: half) }
        XCTAssertEqual(answers.perDestination.count, 4)
    }

    /// Once a second a charge sweeps the buckets back at the brim away, full table or not: the
    /// table holds the destinations answered lately, not every one since the start.
    func testASweepOnceASecondKeepsOnlyTheDestinationsStillOwed() {
        var answers = budget(destinations: 1_024)
        answers.charge(900, to: endpoint(1), now: 0)
        for n: UInt32 in 2...50 { answers.charge(10, to: endpoint(n), now: 0) }
        answers.charge(10, to: endpoint(60), now: second - 1)
        XCTAssertEqual(answers.perDestination.count, 51, "no sweep within the second")
        answers.charge(10, to: endpoint(61), now: second)
        XCTAssertEqual(Set(answers.perDestination.keys), [endpoint(1), endpoint(60), endpoint(61)])
    }

    /// With none at the brim, the one owed least goes; among equals the lowest address, in
    /// whatever order they came. A dictionary's order follows its seed (per process, and per
    /// table storage), so each round draws other addresses and another set of equals.
    func testTheVictimAmongEqualsIsTheLowestAddress() {
        var rng = SplitMix64(seed: 9)
        for _ in 0..<200 {
            var answers = budget(destinations: 8)
            let addresses = (0..<8).map { _ in UInt32(truncatingIfNeeded: rng.next() % 0xFF_FFFF) }
            guard Set(addresses).count == 8 else { continue }
            // Three to five of them owed the least (charged 500), the others more (800).
            let equals = Set(addresses.prefix(3 + Int(rng.next() % 3)))
            for address in addresses.shuffled(using: &rng) {
                answers.charge(equals.contains(address) ? 500 : 800, to: endpoint(address), now: 0)
            }
            answers.charge(1, to: endpoint(0xFF_FFFF), now: 0)
            let victim = equals.min()!
            XCTAssertNil(answers.perDestination[endpoint(victim)], "the lowest of the equals goes")
            XCTAssertEqual(answers.perDestination.count, 8)
            for address in addresses where address != victim { XCTAssertNotNil(answers.perDestination[endpoint(address)]) }
        }
    }
}
