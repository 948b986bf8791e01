import StarlingCore
@testable import StarlingSimulator
import XCTest

/// The event queue decides the order of every simulated event, so a run replays only if it is
/// exact: batches (one multicast's deliveries) must come out interleaved with everything else
/// exactly as the same items pushed one by one would.
final class EventQueueTests: XCTestCase {
    /// Random pushes, batches and pops, mirrored on a queue that takes every item singly.
    func testBatchesComeOutAsSinglePushesWould() {
        for seed in UInt64(1)...40 {
            var rng = SplitMix64(seed: seed)
            var batched = EventQueue<Int>()
            var single = EventQueue<Int>()
            var now: UInt64 = 0
            var nextItem = 0
            var popped = 0
            for _ in 0..<400 {
                switch rng.next() % 4 {
                case 0:
                    let time = now + rng.next() % 50
                    batched.push(nextItem, at: time)
                    single.push(nextItem, at: time)
                    nextItem += 1
                case 1:
                    // Times repeat within a batch and across batches: ties go by push order.
                    let batch = (0..<Int(rng.next() % 30)).map { offset in (item: nextItem + offset, time: now + rng.next() % 20) }
                    nextItem += batch.count
                    batched.push(batch: batch)
                    for entry in batch { single.push(entry.item, at: entry.time) }
                default:
                    XCTAssertEqual(batched.nextTime, single.nextTime, "seed \(seed)")
                    XCTAssertEqual(batched.first?.item, single.first?.item, "seed \(seed)")
                    let a = batched.pop()
                    let b = single.pop()
                    XCTAssertEqual(a?.time, b?.time, "seed \(seed)")
                    XCTAssertEqual(a?.item, b?.item, "seed \(seed)")
                    if let a { now = a.time; popped += 1 }
                }
            }
            while let b = single.pop() {
                let a = batched.pop()
                XCTAssertEqual(a?.time, b.time, "seed \(seed)")
                XCTAssertEqual(a?.item, b.item, "seed \(seed)")
                popped += 1
            }
            XCTAssertNil(batched.pop())
            XCTAssertTrue(batched.isEmpty)
            XCTAssertEqual(popped, nextItem, "every item pushed came out once")
        }
    }

    /// Equal times come out in push order (the determinism the simulator relies on).
    func testEqualTimesComeOutInPushOrder() {
        var queue = EventQueue<String>()
        queue.push("a", at: 5)
        queue.push(batch: [(item: "b", time: 5), (item: "c", time: 3), (item: "d", time: 5)])
        queue.push("e", at: 3)
        var order: [String] = []
        while let next = queue.pop() { order.append(next.item) }
        XCTAssertEqual(order, ["c", "e", "a", "b", "d"])
    }
}
