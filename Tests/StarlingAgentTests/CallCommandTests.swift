import Starling
import StarlingTestSupport
import XCTest

/// `starling call` (issue 18): the CLI runs a command an embedded agent registered and prints
/// each agent's result; an agent without it answers "unknown command" and the exit code is 1.
final class CallCommandTests: XCTestCase {
    override func setUpWithError() throws { try Loopback.requireMulticast() }

    func testCallPrintsEachAgentsResultAndUnknownCommandsFail() async throws {
        let group = LoopbackCluster.randomGroup()
        var configuration = Configuration.loopback(name: "embedded")
        configuration.group = group
        configuration.logLevel = .error
        let agent = try Agent(configuration)
        try agent.handle("queue-depth") { request in ["depth": .int(request.args.count * 10)] }
        let run = Task { try await agent.run() }
        defer { run.cancel() }
        let base = ["--group", group.description, "--interface", "lo", "--timeout", "5"]

        let called = try ChildProcess.run(Loopback.binary, ["call", "queue-depth", "a", "b"] + base)
        XCTAssertEqual(called.code, 0, called.stderr)
        XCTAssertEqual(called.stdout, "embedded: {\"depth\":20}\n")

        let json = try ChildProcess.run(Loopback.binary, ["call", "queue-depth", "--json"] + base)
        XCTAssertEqual(json.code, 0, json.stderr)
        guard case .array(let rows) = try JSON.parse(json.stdout) else { return XCTFail(json.stdout) }
        XCTAssertEqual(rows.map { $0["result"] }, [["depth": 0]])
        XCTAssertEqual(rows.first?["name"], "embedded")

        let unknown = try ChildProcess.run(Loopback.binary, ["call", "no-such-command"] + base)
        XCTAssertEqual(unknown.code, 1)
        XCTAssertTrue(unknown.stderr.contains("unknown command 'no-such-command'"), unknown.stderr)

        let usage = try ChildProcess.run(Loopback.binary, ["call", String(repeating: "x", count: 40)] + base)
        XCTAssertEqual(usage.code, 2, "a command name over 32 bytes is a usage error")
    }
}
