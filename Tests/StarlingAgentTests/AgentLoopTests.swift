import Foundation
@_spi(Testing) import Starling
import StarlingCore
import StarlingPOSIX
import Synchronization
import XCTest

/// The agent's loop: one path for events, no slow work under the loop lock, counted send and
/// poll failures, one loop per agent (issue 14 items 8 and 24).
final class AgentLoopTests: XCTestCase {
    override func setUpWithError() throws { try Loopback.requireMulticast() }

    /// Events collected by an `onEvent` handler.
    final class Recorder: Sendable {
        let events = Mutex<[PeerEvent]>([])
        func add(_ event: PeerEvent) { events.withLock { $0.append(event) } }
        var all: [PeerEvent] { events.withLock { $0 } }
    }

    func testEventsFromRevokeAndRequestReachHandlers() async throws {
        // issue 14 item 8: the core runs under the lock for API calls too; their events used to
        // be collected into a local array and never delivered.
        let group = Loopback.group()
        let agents = try (1...2).map { try Loopback.agent("h\($0)", group: group) }
        defer { for agent in agents { agent.shutdown() }; for agent in agents { agent.waitUntilFinished() } }
        XCTAssertTrue(Loopback.eventually { agents.allSatisfy { $0.members().filter(\.isLive).count == 1 } })
        let recorder = Recorder()
        agents[0].onEvent { recorder.add($0) }
        let result = try await agents[0].revoke(["item-8"])
        XCTAssertTrue(result.isComplete, "\(result)")
        XCTAssertTrue(Loopback.eventually {
            recorder.all.contains { if case .revoked(let ids, let by) = $0 { ids == ["item-8"] && by == "h1" } else { false } }
        }, "the local revoke's event: \(recorder.all)")
        let finished = { recorder.all.filter { if case .requestFinished = $0 { true } else { false } }.count }
        XCTAssertTrue(Loopback.eventually { finished() == 1 }, "\(recorder.all)")
        _ = try await agents[0].request("ping")
        XCTAssertTrue(Loopback.eventually { finished() == 2 }, "\(recorder.all)")
    }

    func testGettersAndCallsDoNotWaitWhileEffectsAreCarriedOut() throws {
        // issue 14 item 24: sends, log lines, saves and handler calls run outside the loop lock.
        // The loop's first event (mingle: searching) blocks in a handler until the test has read
        // the agent and called it: that only works if the lock is free meanwhile.
        var config = Configuration(name: "g1")
        config.group = Loopback.group()
        config.logLevel = .error
        let agent = try Agent(config)
        let entered = Atomic<Bool>(false)
        let released = Atomic<Bool>(false)
        let releasedByTest = Atomic<Bool>(false)
        agent.onEvent { _ in
            guard !entered.exchange(true, ordering: .acquiringAndReleasing) else { return }
            // At most 10 s: a test that regresses fails instead of hanging.
            for _ in 0..<1_000 where !released.load(ordering: .acquiring) { usleep(10_000) }
            releasedByTest.store(released.load(ordering: .acquiring), ordering: .releasing)
        }
        try agent.start()
        defer { agent.shutdown(); agent.waitUntilFinished() }
        XCTAssertTrue(Loopback.eventually { entered.load(ordering: .acquiring) })
        _ = agent.members()
        _ = agent.counters
        _ = agent.clock
        _ = agent.isSynced
        Task { _ = try await agent.elect("lock") }  // queues its effects for the thread already carrying them out
        released.store(true, ordering: .releasing)
        XCTAssertTrue(Loopback.eventually { releasedByTest.load(ordering: .acquiring) }, "a getter or elect waited for the handler")
        XCTAssertTrue(Loopback.eventually { agent.isLeader(of: "lock") }, "the queued election went ahead")
    }

    func testSecondStartAndRunAreRefused() async throws {
        // issue 14 item 24: a second start() ran a second loop on the same sockets.
        let agent = try Loopback.agent("once", group: Loopback.group())
        defer { agent.shutdown(); agent.waitUntilFinished() }
        XCTAssertThrowsError(try agent.start()) { error in
            XCTAssertEqual(error as? AgentError, .alreadyStarted)
            XCTAssertTrue("\(error)".contains("already started"), "\(error)")
        }
        // Should run() ever start a second loop, stop it so the test fails instead of hanging.
        DispatchQueue.global().asyncAfter(deadline: .now() + 5) { agent.shutdown() }
        do {
            try await agent.run()
            XCTFail("a second run was not refused")
        } catch {
            XCTAssertEqual(error, .alreadyStarted)
        }
        agent.shutdown()
        XCTAssertTrue(agent.waitUntilFinished())
        XCTAssertThrowsError(try agent.start(), "a stopped agent does not start again")
    }

    func testBackoffDoublesToItsCapAndResets() {
        // issue 14 item 24: a poll that keeps failing is retried after growing delays, not in a spin.
        var backoff = Backoff(maximumMillis: 100)
        XCTAssertEqual((0..<9).map { _ in backoff.failed() }, [1, 2, 4, 8, 16, 32, 64, 100, 100])
        XCTAssertEqual(backoff.failures, 9)
        backoff.succeeded()
        XCTAssertEqual(backoff.failed(), 1)
        var long = Backoff(maximumMillis: .max)
        for _ in 0..<100 { XCTAssertLessThanOrEqual(long.failed(), 1 << 20) }
    }

    #if DEBUG
    func testFailedSendsAndPollsAreCountedInStats() throws {
        // issue 14 item 24: `_ = try? unicast.send` lost EAGAIN uncounted; `try? Poller.wait`
        // could spin. Failures are injected into this process's syscalls (debug builds), so the
        // test runs one agent and no client until they have all been used.
        SyscallFaults.clear()
        defer { SyscallFaults.clear() }
        let group = Loopback.group()
        let agent = try Loopback.agent("sf", group: group)
        defer { agent.shutdown(); agent.waitUntilFinished() }
        SyscallFaults.inject("sendto", [EAGAIN, ENOBUFS, EAGAIN, ENETUNREACH])
        SyscallFaults.inject("poll", [EINVAL, EINVAL, ENOMEM, EINVAL, EINVAL])
        XCTAssertTrue(Loopback.eventually { SyscallFaults.pending("sendto") == 0 && SyscallFaults.pending("poll") == 0 },
            "the agent kept sending and polling")
        var stats: JSON = .null
        XCTAssertTrue(Loopback.eventually {
            stats = (try? ControlClient(group: group).request("stats", options: RequestOptions(expected: 1)))?.replies.first?.json ?? .null
            return stats["send_failed"]?.numberValue == 4 && stats["poll_failed"]?.numberValue == 5
        }, "stats: \(stats.serialized())")
    }
    #endif
}
