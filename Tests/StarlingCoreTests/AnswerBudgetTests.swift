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
        // One second later endpoints 2–4 are back at 1,000 tokens, endpoint 1 at 200.
        answers.charge(10, to: endpoint(5), now: second)
        XCTAssertEqual(Set(answers.perDestination.keys), [endpoint(1), endpoint(5)])
        XCTAssertFalse(answers.allows(endpoint(1), now: second) == false, "200 tokens left")
        answers.charge(200, to: endpoint(1), now: second)
        XCTAssertFalse(answers.allows(endpoint(1), now: second), "the owed destination kept its debt")
        for n: UInt32 in 6...7 { answers.charge(10, to: endpoint(n), now: second) }
        XCTAssertEqual(answers.perDestination.count, 4)
    }

    /// With none at the brim, the one owed least goes; among equals the lowest address, in
    /// whatever order they came (the dictionary's order follows the process's hash seed).
    func testTheVictimAmongEqualsDoesNotDependOnTheOrderOfArrival() {
        var rng = SplitMix64(seed: 9)
        for _ in 0..<20 {
            var answers = budget(destinations: 6)
            var order: [UInt32] = [10, 11, 12, 13, 14, 15]
            order.shuffle(using: &rng)
            for n in order { answers.charge(n == 14 || n == 12 ? 500 : 800, to: endpoint(n), now: 0) }
            answers.charge(1, to: endpoint(20), now: 0)
            XCTAssertNil(answers.perDestination[endpoint(12)], "12 and 14 are owed least; 12 is the lower address")
            XCTAssertNotNil(answers.perDestination[endpoint(14)])
            XCTAssertEqual(answers.perDestination.count, 6)
        }
    }
}
