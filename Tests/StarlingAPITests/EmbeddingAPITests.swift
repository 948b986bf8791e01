import Starling
import XCTest

// Compiled against `import Starling` alone (this target depends on nothing else): everything an
// embedder names must be reachable from it (issue 17).

/// Loopback group ports for these tests: random, so that runs at the same time do not meet.
private func testGroup() -> Endpoint {
    Configuration.defaultGroup.with(port: UInt16.random(in: 20_000...59_999))
}

/// Waits (polling, generous deadline) until `condition` holds.
private func eventually(_ seconds: Double = 10, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1_000))
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return try await condition()
}

final class EmbeddingAPITests: XCTestCase {
    /// The README's "Embedding" snippet, verbatim between the markers (the test below checks).
    func readmeSnippet() async throws {
        // README-SNIPPET-BEGIN
        let agent = try Agent(.loopback(name: "worker-1"))
        let running = Task { try await agent.run() }  // until cancelled or agent.shutdown()

        Task {
            for await event in agent.events {  // each read of `events` is a subscription of its own
                if case .leaderChanged(let topic, let leadership?) = event {
                    print("\(topic): \(leadership.leader) leads (term \(leadership.term))")
                }
            }
        }

        let leadership = try await agent.elect("scheduler")
        if leadership.leaderID == agent.id { print("this agent runs the scheduler") }
        let revoke = try await agent.revoke(["task-42"])
        print("acknowledged by \(revoke.acknowledged.count), missing \(revoke.missing.count)")
        if agent.isRevoked("task-42") { print("task-42 will be skipped") }
        for stats in try await agent.stats() { print(stats.name, stats.alive, stats.revoked) }

        running.cancel()  // GOODBYE sent, state saved, events end
        try await running.value
        // README-SNIPPET-END
    }

    func testReadmeSnippetRunsAndIsTheReadmes() async throws {
        let source = try String(contentsOfFile: #filePath, encoding: .utf8)
        let readme = try String(contentsOfFile: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("README.md").path, encoding: .utf8)
        let lines = source.split(separator: "\n", omittingEmptySubsequences: false)
        guard let begin = lines.firstIndex(where: { $0.hasSuffix("// README-SNIPPET-BEGIN") }),
              let end = lines.firstIndex(where: { $0.hasSuffix("// README-SNIPPET-END") }) else {
            return XCTFail("markers missing")
        }
        let snippet = lines[(begin + 1)..<end].map { $0.count >= 8 ? String($0.dropFirst(8)) : "" }.joined(separator: "\n")
        XCTAssertTrue(readme.contains("import Starling\n\n" + snippet + "\n"), "README.md's Embedding snippet differs from this test's")
        try await readmeSnippet()
    }

    func testThreeAgentsRunElectRevokeAndStopOnCancellation() async throws {
        let group = testGroup()
        let agents = try (1...3).map { index in
            var configuration = Configuration.loopback(name: "api-\(index)")
            configuration.group = group
            configuration.logLevel = .error
            return try Agent(configuration)
        }
        let firstEvents = agents[0].events
        let runs = agents.map { agent in Task { try await agent.run() } }
        defer { for run in runs { run.cancel() } }

        let joined = Task {
            var names: [String] = []
            for await event in firstEvents {
                if case .joined(let name, _, _) = event { names.append(name) }
                if case .left(let name, _) = event { names.append("left:" + name) }
            }
            return names  // ends when agent 0 stops
        }
        let viewsComplete = await eventually { agents.allSatisfy { $0.members().filter(\.isLive).count == 2 } }
        XCTAssertTrue(viewsComplete)

        let leadership = try await agents[1].elect("jobs")
        XCTAssertEqual(leadership.topic, "jobs")
        let agreed = await eventually { agents.allSatisfy { $0.leader(of: "jobs") == leadership } }
        XCTAssertTrue(agreed, "\(agents.map { $0.leader(of: "jobs") as Any })")
        XCTAssertEqual(agents.filter { $0.isLeader(of: "jobs") }.count, 1)

        let revoke = try await agents[0].revoke(["t-1", "t-2"])
        XCTAssertTrue(revoke.isComplete, "\(revoke)")
        XCTAssertEqual(Set(revoke.acknowledged.map(\.id)), Set([agents[1].id, agents[2].id]))
        XCTAssertTrue(agents.allSatisfy { $0.isRevoked("t-1") && $0.isRevoked("t-2") && !$0.isRevoked("t-3") })

        let pings = try await agents[2].ping()
        XCTAssertEqual(Set(pings.map(\.id)), Set(agents[0..<2].map(\.id)), "the others answer")
        let stats = try await agents[0].stats()
        XCTAssertEqual(Set(stats.map(\.name)), ["api-1", "api-2", "api-3"])
        XCTAssertTrue(stats.allSatisfy { $0.alive == 3 && $0.revoked == 2 && $0.leaders.contains { $0.topic == "jobs" } }, "\(stats)")

        // Cancelling a run is a clean stop: the others hear GOODBYE (left, not dead).
        runs[2].cancel()
        try await runs[2].value
        XCTAssertTrue(agents[2].isFinished)
        let sawLeft = await eventually { agents[0].members().first { $0.id == agents[2].id }?.status == .left }
        XCTAssertTrue(sawLeft, "\(agents[0].members())")
        runs[0].cancel()
        try await runs[0].value
        let names = await joined.value
        XCTAssertEqual(Set(names.filter { !$0.hasPrefix("left:") }), ["api-2", "api-3"])
        XCTAssertTrue(names.contains("left:api-3"), "\(names)")
        var afterStop = 0
        for await _ in agents[0].events { afterStop += 1 }
        XCTAssertEqual(afterStop, 0, "a stopped agent's events end at once")
        do {
            try await agents[0].run()
            XCTFail("a second run was not refused")
        } catch {
            XCTAssertEqual(error, .alreadyStarted)
        }
    }

    func testCallsThrowTypedErrors() async throws {
        var configuration = Configuration.loopback(name: "api-q")
        configuration.group = testGroup()
        configuration.quorum = 3
        configuration.logLevel = .error
        let agent = try Agent(configuration)
        // A call made before run() waits for it: alone, a majority of 3 cannot be had.
        let electing = Task { try await agent.elect("x") }
        let run = Task { try await agent.run() }
        defer { run.cancel() }
        do {
            _ = try await electing.value
            XCTFail("elected without a quorum")
        } catch {
            XCTAssertEqual(error as? AgentError, .noQuorum(topic: "x", have: 1, need: 2))
        }
        do {
            _ = try await agent.elect(String(repeating: "t", count: 65))
            XCTFail("a topic of 65 bytes was accepted")
        } catch {
            XCTAssertEqual(error, .invalidArgument("topic must be 1 to 64 bytes (it has 65)"))
        }
        // Nobody answers: the request would wait a minute, but its task is cancelled.
        let requesting = Task {
            try await agent.request("ping", expected: 5, timeout: .seconds(60))
        }
        try await Task.sleep(for: .milliseconds(20))
        requesting.cancel()
        do {
            _ = try await requesting.value
            XCTFail("a cancelled request returned")
        } catch {
            XCTAssertEqual(error as? AgentError, .cancelled)
        }
        run.cancel()
        try await run.value
        do {
            _ = try await agent.elect("x")
            XCTFail("elect after the agent stopped")
        } catch {
            XCTAssertEqual(error, .notRunning)
        }
    }

    func testARunCancelledBeforeItStartsEndsTheAgent() async throws {
        var configuration = Configuration.loopback(name: "api-c")
        configuration.group = testGroup()
        let agent = try Agent(configuration)
        let events = agent.events
        let run = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await agent.run()
        }
        try await run.value
        XCTAssertTrue(agent.isFinished)
        XCTAssertFalse(agent.isRunning)
        var count = 0
        for await _ in events { count += 1 }
        XCTAssertEqual(count, 0, "the events end")
        do {
            _ = try await agent.revoke(["x"])
            XCTFail("a revoke on an agent that never ran")
        } catch {
            XCTAssertEqual(error, .notRunning)
        }
        do {
            _ = try await agent.revoke([])
            XCTFail("an empty revoke")
        } catch {
            XCTAssertEqual(error, .invalidArgument("revoke needs at least one id"))
        }
    }

    func testConfigurationIsValidatedFieldByField() {
        func field(_ change: (inout Configuration) -> Void) -> String? {
            var configuration = Configuration.loopback(name: "v")
            change(&configuration)
            do {
                try configuration.validate()
                return nil
            } catch {
                guard case .invalidConfiguration(let field, _) = error else { return "\(error)" }
                return field
            }
        }
        XCTAssertNil(field { _ in })
        XCTAssertNil(field { $0 = .lan(name: "v", interface: "nosuchif0") }, "the interface is checked at start, not here")
        XCTAssertEqual(field { $0.name = "" }, "name")
        XCTAssertEqual(field { $0.name = String(repeating: "n", count: 65) }, "name")
        XCTAssertEqual(field { $0.name = "a\nb" }, "name")
        XCTAssertNil(field { $0.name = "back\\slash" }, "a backslash is no control character")
        XCTAssertEqual(field { $0.cluster = "" }, "cluster")
        XCTAssertEqual(field { $0.protocolPeriod = .microseconds(999) }, "protocolPeriod")
        XCTAssertEqual(field { $0.protocolPeriod = .seconds(-1) }, "protocolPeriod")
        XCTAssertEqual(field { $0.pingTimeout = .milliseconds(150) }, "pingTimeout")
        XCTAssertEqual(field { $0.pingTimeout = .zero }, "pingTimeout")
        XCTAssertEqual(field { $0.suspicionAlpha = .nan }, "suspicionAlpha")
        XCTAssertEqual(field { $0.suspicionBeta = .infinity }, "suspicionBeta")
        XCTAssertEqual(field { $0.indirectProbes = -1 }, "indirectProbes")
        XCTAssertEqual(field { $0.witnesses = 0 }, "witnesses")
        XCTAssertEqual(field { $0.group = Endpoint(address: 0x7F00_0001, port: 5354) }, "group")
        XCTAssertEqual(field { $0.multicast = false }, "seeds")
        XCTAssertEqual(field { $0.revokedMaxCount = 0 }, "revokedMaxCount")
        XCTAssertEqual(field { $0.revokedMaxAge = .milliseconds(10) }, "revokedMaxAge")
        XCTAssertEqual(field { $0.electionTimeout = .milliseconds(1) }, "electionTimeout")
        XCTAssertEqual(field { $0.quorum = 0 }, "quorum")
        XCTAssertEqual(field { $0.aloneAfter = .seconds(4) }, "aloneAfter")
        XCTAssertEqual(field { $0.reapAfter = .milliseconds(100) }, "reapAfter")
        XCTAssertEqual(field { $0.eventBufferSize = 0 }, "eventBufferSize")
        XCTAssertEqual(field { $0.stateDirectory = "" }, "stateDirectory")
        XCTAssertThrowsError(try Agent(Configuration.loopback(name: ""))) { error in
            XCTAssertEqual(error as? AgentError, .invalidConfiguration(field: "name", reason: "must be 1 to 64 bytes of UTF-8 (it has 0)"))
            XCTAssertEqual("\(error)", "configuration: name must be 1 to 64 bytes of UTF-8 (it has 0)")
        }
    }
}
