import Starling
import XCTest

/// Custom commands (issue 18, Protocol.md §3.5.3): an embedder registers a handler; a request
/// for the command from another agent runs it once and gets its result.
final class CustomCommandAPITests: XCTestCase {
    struct Failure: Error, CustomStringConvertible {
        var description: String { "the queue is gone" }
    }

    func testAHandlerAnswersAnotherAgentsRequest() async throws {
        let group = Configuration.defaultGroup.with(port: UInt16.random(in: 20_000...59_999))
        let agents = try ["cmd-1", "cmd-2"].map { name in
            var configuration = Configuration.loopback(name: name)
            configuration.group = group
            configuration.logLevel = .error
            return try Agent(configuration)
        }
        let runs = agents.map { agent in Task { try await agent.run() } }
        defer { for run in runs { run.cancel() } }
        let calls = Counter()
        try agents[0].handle("queue-depth") { request in
            calls.add()
            return ["depth": 12, "args": .array(request.args.map { .string($0) }), "from": .string(request.requesterName)]
        }
        try agents[0].handle("broken") { _ in throw Failure() }
        try agents[0].handle("slow", timeout: .milliseconds(100)) { _ in
            try await Task.sleep(for: .seconds(30))
            return .null
        }
        XCTAssertThrowsError(try agents[0].handle("ping") { _ in .null }) { error in
            XCTAssertEqual(error as? AgentError, .invalidArgument("'ping' is a built-in command"))
        }
        XCTAssertThrowsError(try agents[0].handle(String(repeating: "x", count: 33)) { _ in .null })

        var joined = false
        for _ in 0..<500 where !joined {
            joined = agents.allSatisfy { $0.members().filter(\.isLive).count == 1 }
            try await Task.sleep(for: .milliseconds(10))
        }
        XCTAssertTrue(joined)

        let answer = try await agents[1].request("queue-depth", args: ["high"], expected: 1, timeout: .seconds(10))
        XCTAssertEqual(answer.replies.map(\.status), [.ok])
        let result = answer.replies.first?.json["result"]
        XCTAssertEqual(result, ["depth": 12, "args": ["high"], "from": "cmd-2"])
        XCTAssertEqual(answer.replies.first?.field("name"), "cmd-1")
        XCTAssertEqual(answer.replies.first?.field("command"), "queue-depth")
        XCTAssertEqual(calls.value, 1)

        let broken = try await agents[1].request("broken", expected: 1, timeout: .seconds(10))
        XCTAssertEqual(broken.replies.map(\.status), [.error])
        XCTAssertEqual(broken.replies.first?.field("error"), "the queue is gone")

        let slow = try await agents[1].request("slow", expected: 1, timeout: .seconds(10))
        XCTAssertEqual(slow.replies.map(\.status), [.error])
        XCTAssertTrue(slow.replies.first?.field("error")?.contains("timed out") == true, "\(slow.replies)")

        agents[0].removeHandler("queue-depth")
        let removed = try await agents[1].request("queue-depth", expected: 1, timeout: .seconds(10))
        XCTAssertEqual(removed.replies.map(\.status), [.unknownCommand], "a removed command is unknown again")
        XCTAssertEqual(calls.value, 1)
    }
}

/// A count shared with handlers (they run in tasks of their own).
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
