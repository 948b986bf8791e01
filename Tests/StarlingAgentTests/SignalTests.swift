import Foundation
import Glibc
@_spi(Testing) import Starling
import StarlingCore
import StarlingPOSIX
import StarlingTestSupport
import XCTest

/// Signals sent to `starling agent` child processes (issue 14 item 22). Only children are
/// signalled, never the test process.
final class SignalTests: XCTestCase {
    override func setUpWithError() throws { try Loopback.requireMulticast() }

    func testSIGTERMStopsCleanly() throws { try assertCleanStop(on: SIGTERM) }
    func testSIGINTStopsCleanly() throws { try assertCleanStop(on: SIGINT) }
    func testSIGQUITStopsCleanly() throws { try assertCleanStop(on: SIGQUIT) }

    /// issue 14 item 22: SIGQUIT (and SIGHUP, which now reloads) killed the agent with no GOODBYE and unsaved state.
    /// The signal comes right after a revoke was acknowledged: exit 0, the peer lists the agent
    /// as `left`, and the revoke is there after a restart on the same state dir.
    private func assertCleanStop(on signal: Int32, file: StaticString = #filePath, line: UInt = #line) throws {
        let cluster = Cluster()
        let state = "\(cluster.folder)/t-state"
        try cluster.start("peer")
        try cluster.start("t", ["--state-dir", state])
        XCTAssertTrue(Loopback.eventually {
            let views = (try? cluster.views()) ?? [:]
            return views["peer"]?["t"] == "alive" && views["t"]?["peer"] == "alive"
        }, "agents did not meet", file: file, line: line)
        let id = "job-\(Signals.name(signal))"
        let (code, _, errors) = try cluster.cli(["revoke", id, "--to", "t"])
        XCTAssertEqual(code, 0, errors, file: file, line: line)
        let child = try XCTUnwrap(cluster.children["t"])
        child.signal(signal)
        XCTAssertEqual(child.wait(timeoutMillis: 10_000), 0, "exit status after \(Signals.name(signal)); log:\n\(cluster.log("t"))",
            file: file, line: line)
        cluster.children["t"] = nil
        XCTAssertTrue(cluster.log("t").contains("\(Signals.name(signal)) received: stopping"), cluster.log("t"), file: file, line: line)
        XCTAssertTrue(Loopback.eventually { ((try? cluster.views()) ?? [:])["peer"]?["t"] == "left" },
            "no GOODBYE seen: \((try? cluster.views()) ?? [:])", file: file, line: line)
        // Anti-entropy has given the id to the peer by now: restart alone, so that it can only
        // come from the state file.
        cluster.kill("peer")
        try cluster.start("t", ["--state-dir", state])
        var ids: [String] = []
        XCTAssertTrue(Loopback.eventually {
            let result = try? cluster.client().request("revoked", target: "t", options: RequestOptions(expected: 1))
            ids = (result?.replies.first?.json["ids"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
            return ids == [id]
        }, "revoke acknowledged before \(Signals.name(signal)) lost: \(ids)", file: file, line: line)
    }

    func testSIGHUPReloadsAndKeepsRunning() throws {
        // issue 20: SIGHUP reloads (key file, log level) instead of stopping; without a key file
        // or config file there is nothing to change, and the agent says so.
        try assertKeepsRunning(after: SIGHUP, logging: "reload (SIGHUP): nothing changed")
    }

    func testSIGUSR1WritesStatsAndKeepsRunning() throws {
        // issue 14 item 22: SIGUSR1 killed the agent; it now writes its stats to the log.
        try assertKeepsRunning(after: SIGUSR1, logging: "SIGUSR1: stats {")
    }

    /// `signal` makes the agent log `expected` and it keeps answering; SIGTERM then stops it cleanly.
    private func assertKeepsRunning(after signal: Int32, logging expected: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let cluster = Cluster()
        try cluster.start("s")
        XCTAssertTrue(Loopback.eventually { cluster.log("s").contains("mingle:") }, cluster.log("s"), file: file, line: line)
        let child = try XCTUnwrap(cluster.children["s"])
        child.signal(signal)
        XCTAssertTrue(Loopback.eventually { cluster.log("s").contains(expected) }, cluster.log("s"), file: file, line: line)
        XCTAssertEqual(try cluster.cli(["ping", "--to", "s"]).0, 0, "still answering after \(Signals.name(signal))", file: file, line: line)
        child.signal(SIGTERM)
        XCTAssertEqual(child.wait(), 0, file: file, line: line)
        cluster.children["s"] = nil
    }

    func testClosedStderrDoesNotKillTheAgent() throws {
        // issue 14 item 22: with its stderr reader gone, the agent's next log line raised SIGPIPE.
        // stderr is a FIFO this test reads nothing from and then closes.
        let cluster = Cluster()
        let fifo = "\(cluster.folder)/stderr.fifo"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let reader = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC)  // not inherited: the child must not be a reader
        XCTAssertGreaterThanOrEqual(reader, 0)
        try cluster.start("pipe", stderr: fifo)
        let child = try XCTUnwrap(cluster.children["pipe"])
        XCTAssertTrue(Loopback.eventually { (try? cluster.cli(["ping", "--to", "pipe"]).0) == 0 }, "agent did not start")
        close(reader)
        child.signal(SIGUSR1)  // a log line into the closed pipe: EPIPE, no longer SIGPIPE
        XCTAssertTrue(Loopback.eventually { (try? cluster.cli(["ping", "--to", "pipe"]).0) == 0 }, "agent died")
        child.signal(SIGTERM)  // more log lines on the way out
        XCTAssertEqual(child.wait(), 0, "128+13 would be SIGPIPE")
        cluster.children["pipe"] = nil
    }
}
