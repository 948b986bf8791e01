@testable import StarlingCore
import XCTest

/// Piggyback queue and deadline heap for version 2's membership (Protocol.md §6.1.3; issue 16).
final class DisseminationTests: XCTestCase {
    func id(_ n: Int) -> NodeID { NodeID(high: 5, low: UInt64(n)) }

    func testTransmissionsGrowWithTheLogOfTheView() {
        // λ = 4 (memberlist's RetransmitMult): at 3, one refutation in a few thousand missed
        // a peer at 10 % loss (simulated 10-minute soaks).
        XCTAssertEqual(Dissemination.transmissions(members: 0), 4)
        XCTAssertEqual(Dissemination.transmissions(members: 9), 4)
        XCTAssertEqual(Dissemination.transmissions(members: 10), 8)
        XCTAssertEqual(Dissemination.transmissions(members: 99), 8)
        XCTAssertEqual(Dissemination.transmissions(members: 10_000), 20)
        XCTAssertEqual(Dissemination.transmissions(members: -5), 4)
        XCTAssertEqual(Dissemination.transmissions(members: .max), 76)
    }

    func testEachChangeIsSentItsCountThenLeavesFreshOnesFirst() {
        var queue = Dissemination()
        _ = queue.enqueue(id(1), members: 5, limit: 64)
        XCTAssertEqual(queue.take(8), [id(1)])
        XCTAssertEqual(queue.take(8), [id(1)])
        XCTAssertEqual(queue.take(8), [id(1)])
        _ = queue.enqueue(id(2), members: 5, limit: 64)
        XCTAssertEqual(queue.take(1), [id(2)], "the fresh change goes before the one sent three times")
        XCTAssertEqual(queue.take(8), [id(2), id(1)])
        XCTAssertEqual(queue.take(8), [id(2)])
        XCTAssertEqual(queue.take(8), [id(2)])
        XCTAssertTrue(queue.isEmpty)
        // A newer state of a member replaces the queued one: one entry per member.
        _ = queue.enqueue(id(3), members: 5, limit: 64)
        _ = queue.enqueue(id(3), members: 5, limit: 64)
        XCTAssertEqual(queue.count, 1)
        queue.remove(id(3))
        XCTAssertEqual(queue.take(8), [])
        XCTAssertEqual(queue.take(-1), [])
    }

    func testAFullQueueDropsTheChangeWithFewestSendsLeft() {
        var queue = Dissemination()
        XCTAssertFalse(queue.enqueue(id(1), members: 5, limit: 2))
        XCTAssertEqual(queue.take(8), [id(1)])
        XCTAssertFalse(queue.enqueue(id(2), members: 5, limit: 2))
        XCTAssertTrue(queue.enqueue(id(3), members: 5, limit: 2), "a third change overflows a queue of 2")
        XCTAssertEqual(Set(queue.pending.keys), [id(2), id(3)], "the change already sent once went")
        XCTAssertFalse(queue.enqueue(id(3), members: 5, limit: 2), "a newer state of a queued member replaces it")
        // All with as many sends left: the change just queued stays.
        var even = Dissemination()
        _ = even.enqueue(id(1), members: 5, limit: 2)
        _ = even.enqueue(id(2), members: 5, limit: 2)
        XCTAssertTrue(even.enqueue(id(3), members: 5, limit: 2))
        XCTAssertEqual(even.count, 2)
        XCTAssertEqual(even.pending[id(3)], 4)
        // What is left is sent its count, then the queue is empty.
        var sends = 0
        while !even.take(8).isEmpty { sends += 1 }
        XCTAssertEqual(sends, 4)
        XCTAssertTrue(even.isEmpty)
    }

    enum Kind: Hashable, Comparable, Sendable { case suspicion, reap }

    func testDeadlinesComeOutInOrderAndMovedOrCancelledOnesDoNot() {
        var deadlines = Deadlines<Kind>()
        deadlines.set(id(1), .suspicion, at: 300)
        deadlines.set(id(2), .suspicion, at: 100)
        deadlines.set(id(3), .reap, at: 200)
        deadlines.set(id(1), .reap, at: 250)
        XCTAssertEqual(deadlines.next, 100)
        deadlines.set(id(2), .suspicion, at: 400)
        deadlines.cancel(id(3), .reap)
        XCTAssertEqual(deadlines.due(now: 260).map(\.member), [id(1)])
        XCTAssertEqual(deadlines.due(now: 260), [])
        let rest = deadlines.due(now: 1_000)
        XCTAssertEqual(rest.map(\.at), [300, 400])
        XCTAssertEqual(rest.map(\.kind), [.suspicion, .suspicion])
        XCTAssertNil(deadlines.next)
        XCTAssertEqual(deadlines.count, 0)
    }

    /// Deadlines due at the same moment come out by member, then kind, whatever order they were
    /// set in and whatever rebuilds happened: a rebuild refills the heap in the dictionary's
    /// order, which follows the process's hash seed, and a simulated run must repeat in every
    /// process.
    func testTiesComeOutByMemberThenKindWhateverTheOrderTheyWereSetIn() {
        let expected = (0..<40).flatMap { [(id($0), Kind.suspicion), (id($0), Kind.reap)] }
        var rng = SplitMix64(seed: 3)
        for _ in 0..<20 {
            var deadlines = Deadlines<Kind>()
            var order = expected
            order.shuffle(using: &rng)
            for (member, kind) in order {
                // Moves first, so stale entries pile up and force rebuilds on the way.
                for at in UInt64(1)...4 { deadlines.set(member, kind, at: 100 + at) }
                deadlines.set(member, kind, at: 50)
            }
            let due = deadlines.due(now: 60)
            XCTAssertEqual(due.map(\.member), expected.map(\.0))
            XCTAssertEqual(due.map(\.kind), expected.map(\.1))
        }
    }

    func testStaleEntriesDoNotPileUp() {
        var deadlines = Deadlines<Kind>()
        var rng = SplitMix64(seed: 1)
        for round in 0..<20_000 {
            deadlines.set(id(round % 50), .suspicion, at: rng.next() % 1_000_000)
        }
        XCTAssertEqual(deadlines.count, 50)
        XCTAssertLessThanOrEqual(deadlines.stored, 2 * 50 + 64 + 1)
        var last: UInt64 = 0
        let all = deadlines.due(now: .max)
        XCTAssertEqual(all.count, 50)
        for entry in all {
            XCTAssertGreaterThanOrEqual(entry.at, last)
            last = entry.at
            XCTAssertEqual(all.filter { $0.member == entry.member }.count, 1)
        }
    }
}

/// Piggybacking as a whole peer does it (issue 16).
final class PeerPiggybackTests: XCTestCase {
    let ms = PeerHarness.ms

    /// Issue 16 (Lifeguard's buddy system): a PING to a member this peer holds suspect carries
    /// that member's own suspect entry first, even after its piggyback count ran out.
    /// §6.6: the piggyback queue holds at most `piggybackQueue` changes; each one dropped is counted.
    func testAJoinStormOverflowsThePiggybackQueueAndIsCounted() {
        var h = PeerHarness { $0.limits.piggybackQueue = 3 }
        h.start()
        let fakes = h.join(9)
        XCTAssertEqual(h.peer.members.count, 9)
        XCTAssertLessThanOrEqual(h.peer.dissemination.count, 3)
        XCTAssertEqual(h.peer.counters.drops["piggyback_full"] ?? 0, 6, "9 joins into a queue of 3")
        XCTAssertNotNil(h.peer.dissemination[fakes[8]], "the newest change is kept")
    }

    func testAPingToASuspectCarriesItsSuspicionFirst() throws {
        // Long suspicions, so the suspect is still suspect when its turn to be pinged comes.
        var h = PeerHarness { $0.suspicionAlpha = 100 }
        h.start()
        let fakes = h.join(9)
        let suspect = fakes[4]
        h.ping(from: fakes[0], name: "f0", gossip: [h.entry(suspect, .suspect)], port: h.port(of: fakes[0]))
        XCTAssertEqual(h.peer.members[suspect]?.status, .suspect)
        h.clearSent()
        h.advance(10_000 * ms, silent: [suspect])
        let toSuspect = h.pings.filter { $0.target == suspect }
        XCTAssertFalse(toSuspect.isEmpty)
        for ping in toSuspect { XCTAssertEqual(ping.piggyback.first, h.entry(suspect, .suspect)) }
        XCTAssertNil(h.peer.dissemination[suspect], "its own count ran out meanwhile")
        XCTAssertTrue(h.pings.filter { $0.target != suspect }.allSatisfy { $0.piggyback.count <= 8 })
    }
}
