import Foundation
@testable import Starling
import StarlingCore
import StarlingPOSIX
import XCTest

/// issue 18, event handlers: `--on-event [FILTER=]CMD` / ``Configuration/eventHandlers``. Spec
/// parsing and filters as units; then real agents on loopback whose handlers write what they
/// got into a temporary folder. Every wait is a condition with a generous deadline.
final class EventHandlerTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "starling-handlers-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: folder)
    }

    // MARK: Units

    func testSpecParsing() throws {
        // issue 18 event handlers: [FILTER=]COMMAND, the filter only before a first '=' without
        // white space or '/'.
        let cases: [(String, [String], String)] = [
            ("notify", [], "notify"),
            ("member-join,leader=/usr/local/bin/notify --all", ["member-join", "leader"], "/usr/local/bin/notify --all"),
            ("echo a=b", [], "echo a=b"),
            ("/bin/x --level=3", [], "/bin/x --level=3"),
            ("*=FOO=bar notify", ["*"], "FOO=bar notify"),
            ("user:deploy,user=exit 0", ["user:deploy", "user"], "exit 0"),
            ("member,no_quorum,stalled=x", ["member", "no_quorum", "stalled"], "x"),
        ]
        for (spec, filter, command) in cases {
            let handler = try EventHandler(parsing: spec)
            XCTAssertEqual(handler.filter, filter, spec)
            XCTAssertEqual(handler.command, command, spec)
        }
        for bad in ["", "joined=", "joined=  ", "joind=notify", "FOO=bar notify", "user:=x", "member-join,,leader=x", "a\u{0}b"] {
            XCTAssertThrowsError(try EventHandler(parsing: bad), bad) { error in
                guard case AgentError.invalidConfiguration(let field, let reason) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(field, "eventHandlers")
                XCTAssertFalse(reason.isEmpty)
            }
        }
        // A command that starts with an assignment is told how to pass it.
        XCTAssertThrowsError(try EventHandler(parsing: "FOO=bar notify")) { error in
            XCTAssertTrue("\(error)".contains("'*=FOO=bar notify'"), "\(error)")
        }
    }

    func testFilterMatching() {
        // issue 18 event handlers: names as `watch` spells them, Serf's aliases, groups, user events.
        func matches(_ filter: [String], _ kind: String, _ user: String? = nil) -> Bool {
            EventMatcher(filter).matches(kind: kind, userEvent: user)
        }
        XCTAssertTrue(matches([], "joined"))
        XCTAssertTrue(matches(["*"], "stalled"))
        XCTAssertTrue(matches(["member-join"], "joined"))
        XCTAssertFalse(matches(["member-join"], "left"))
        XCTAssertTrue(matches(["member-leave", "member-failed"], "left"))
        XCTAssertTrue(matches(["member-leave", "member-failed"], "dead"))
        XCTAssertFalse(matches(["member-leave", "member-failed"], "suspect"))
        for kind in EventHandler.memberEvents { XCTAssertTrue(matches(["member"], kind), kind) }
        XCTAssertFalse(matches(["member"], "leader"))
        XCTAssertTrue(matches(["leader"], "leader"))
        XCTAssertFalse(matches(["leader"], "no_quorum"))
        XCTAssertTrue(matches(["user"], "user", "deploy"))
        XCTAssertTrue(matches(["user:deploy"], "user", "deploy"))
        XCTAssertFalse(matches(["user:deploy"], "user", "deploy2"))
        XCTAssertFalse(matches(["user:deploy"], "user", nil))
        XCTAssertFalse(matches(["user:deploy"], "joined"))
        // Bytes, not Unicode equivalence: é precomposed is not e + combining accent.
        XCTAssertFalse(matches(["user:caf\u{E9}"], "user", "cafe\u{301}"))
    }

    func testEnvironmentOfAnEvent() {
        // issue 18 event handlers: STARLING_MEMBER_* for member events, STARLING_* otherwise.
        let joined = EventHandler.environment(kind: "joined",
            fields: [("name", .string("b")), ("id", .string("0a")), ("address", .string("127.0.0.1:9"))], agent: "a", cluster: "c")
        XCTAssertEqual(joined, ["STARLING_EVENT": "joined", "STARLING_NAME": "a", "STARLING_CLUSTER": "c",
                                "STARLING_MEMBER_NAME": "b", "STARLING_MEMBER_ID": "0a", "STARLING_MEMBER_ADDRESS": "127.0.0.1:9"])
        let leader = EventHandler.environment(kind: "leader",
            fields: [("topic", .string("t")), ("leader", .null), ("term", .int(7))], agent: "a", cluster: "c")
        XCTAssertEqual(leader["STARLING_TOPIC"], "t")
        XCTAssertEqual(leader["STARLING_LEADER"], "")
        XCTAssertEqual(leader["STARLING_TERM"], "7")
        // A future field that would take a fixed name moves aside; arrays stay on stdin.
        let user = EventHandler.environment(kind: "user",
            fields: [("name", .string("deploy")), ("ids", .array([.string("x")]))], agent: "a", cluster: "c")
        XCTAssertEqual(user["STARLING_NAME"], "a")
        XCTAssertEqual(user["STARLING_EVENT_NAME"], "deploy")
        XCTAssertNil(user["STARLING_IDS"])
    }

    func testConfigurationValidation() {
        // issue 18 event handlers: a bad filter, command, concurrency or time limit names its field.
        func field(_ change: (inout Configuration) -> Void) -> String? {
            var config = Configuration(name: "v")
            change(&config)
            do { try config.validate() } catch { if case .invalidConfiguration(let field, _) = error { return field } }
            return nil
        }
        XCTAssertNil(field { $0.eventHandlers = [EventHandler(filter: ["member-join", "user:x"], command: "true")] })
        XCTAssertEqual(field { $0.eventHandlers = [EventHandler(filter: ["joind"], command: "true")] }, "eventHandlers")
        XCTAssertEqual(field { $0.eventHandlers = [EventHandler(command: " ")] }, "eventHandlers")
        XCTAssertEqual(field { $0.eventHandlerConcurrency = 0 }, "eventHandlerConcurrency")
        XCTAssertEqual(field { $0.eventHandlerTimeout = .milliseconds(1) }, "eventHandlerTimeout")
        // Issue 16: the expected size is 0 to 65,535 and reaches the core's hint.
        XCTAssertEqual(field { $0.expectedMembers = -1 }, "expectedMembers")
        XCTAssertEqual(field { $0.expectedMembers = 65_536 }, "expectedMembers")
        var sized = Configuration(name: "v")
        sized.expectedMembers = 10_000
        XCTAssertEqual(sized.peerConfig(id: NodeID(high: 1, low: 2), replyPort: 1, seed: 1).expectedMembers, 10_000)
        // §6.1.8: the settle interval is 0 to 60 s, the bound on holding back 1 ms to 1 h.
        XCTAssertEqual(field { $0.settleInterval = .milliseconds(-1) }, "settleInterval")
        XCTAssertEqual(field { $0.settleInterval = .seconds(61) }, "settleInterval")
        XCTAssertEqual(field { $0.publishWithin = .zero }, "publishWithin")
        XCTAssertNil(field { $0.settleInterval = .zero })
        sized.settleInterval = .zero
        sized.publishWithin = .seconds(2)
        let core = sized.peerConfig(id: NodeID(high: 1, low: 2), replyPort: 1, seed: 1)
        XCTAssertEqual([core.settleInterval, core.publishWithin], [0, 2_000_000_000])
    }

    func testInputToAChildThatExitedIsEPIPENotSIGPIPE() throws {
        // issue 18 event handlers: a handler that exits without reading its input. This test
        // process does not ignore SIGPIPE: a write raising it would end the whole run.
        let child = try System.spawnShell("exec 0<&-; exit 0", environment: [:], discardOutput: true)
        defer { System.close(child.input) }
        var exit: (code: Int32, signal: Int32)?
        XCTAssertTrue(Loopback.eventually { exit = try? System.reap(child.pid); return exit != nil })
        XCTAssertEqual(exit?.code, 0)
        XCTAssertThrowsError(try System.sendInput(child.input, ArraySlice([UInt8](repeating: 0x7b, count: 1 << 16)))) { error in
            XCTAssertEqual((error as? Errno)?.rawValue, EPIPE, "\(error)")
        }
    }

    // MARK: Real agents on loopback

    func testHandlerGetsTheEventAsJSONAndItsEnvironment() throws {
        // issue 18 event handlers: a member-join runs the handler with the event's JSON on stdin,
        // STARLING_* in its environment, none of the agent's STARLING_*/NOTIFY_SOCKET/WATCHDOG_*,
        // and no descriptor of the agent's beyond 0, 1 and 2.
        try Loopback.requireMulticast()
        setenv("STARLING_LEAK_CHECK", "1", 1)
        setenv("WATCHDOG_PID", "1", 1)
        // Embedded agents leave systemd alone (systemdNotify is off): only the child could see it.
        setenv("NOTIFY_SOCKET", "/nonexistent/notify", 1)
        defer { unsetenv("STARLING_LEAK_CHECK"); unsetenv("WATCHDOG_PID"); unsetenv("NOTIFY_SOCKET") }
        let group = Loopback.group()
        // The last command replaces the shell, so the listing is of what the handler got (and of
        // ls's own descriptor for the folder it lists), not of the shell's redirection copies.
        let command = "cat > \(folder)/stdin; env > \(folder)/env; exec ls /proc/self/fd > \(folder)/fds"
        let a = try Loopback.agent("ha", group: group) {
            $0.cluster = "hc"
            $0.eventHandlers = [EventHandler(filter: ["member-join"], command: command)]
        }
        defer { a.shutdown(); a.waitUntilFinished() }
        let b = try Loopback.agent("hb", group: group) { $0.cluster = "hc" }
        defer { b.shutdown(); b.waitUntilFinished() }
        XCTAssertTrue(Loopback.eventually(20) { a.eventHandlerStats.succeeded == 1 }, "the handler ran: \(a.eventHandlerStats)")
        let json = try JSON.parse(try String(contentsOfFile: "\(folder)/stdin", encoding: .utf8))
        XCTAssertEqual(json["event"]?.stringValue, "joined")
        XCTAssertEqual(json["source"]?.stringValue, "ha")
        XCTAssertEqual(json["name"]?.stringValue, "hb")
        XCTAssertEqual(json["id"]?.stringValue, b.id.description)
        XCTAssertEqual(json["address"]?.stringValue, b.endpoint.description)
        let environment = try String(contentsOfFile: "\(folder)/env", encoding: .utf8).split(separator: "\n").map(String.init)
        for line in ["STARLING_EVENT=joined", "STARLING_NAME=ha", "STARLING_CLUSTER=hc", "STARLING_MEMBER_NAME=hb",
                     "STARLING_MEMBER_ID=\(b.id.description)", "STARLING_MEMBER_ADDRESS=\(b.endpoint.description)"] {
            XCTAssertTrue(environment.contains(line), "\(line) in \(environment)")
        }
        XCTAssertFalse(environment.contains { $0.hasPrefix("STARLING_LEAK_CHECK=") || $0.hasPrefix("WATCHDOG_") || $0.hasPrefix("NOTIFY_SOCKET=") }, "\(environment)")
        // ls itself opens the folder it lists: one descriptor beyond 0, 1 and 2 (the test
        // process's own, inherited without close-on-exec, are closed for the child too).
        let descriptors = try String(contentsOfFile: "\(folder)/fds", encoding: .utf8).split(separator: "\n").compactMap { Int($0) }
        XCTAssertEqual(descriptors.sorted(), [0, 1, 2, 3])
        XCTAssertEqual(a.eventHandlerStats.failed, 0)
    }

    func testTimedOutHandlerIsKilledWithItsChildrenAndCounted() throws {
        // issue 18 event handlers: past the time limit the handler's process group gets SIGTERM,
        // then SIGKILL 2 s later (this one ignores SIGTERM); the run counts as timed out.
        let pidFile = "\(folder)/pid"
        let command = "trap '' TERM; sleep 60 & echo $! > \(pidFile).tmp; mv \(pidFile).tmp \(pidFile); wait"
        // 1 s: ample for the shell to set its trap and write the pid before the time-out.
        let a = try Loopback.agent("ht", group: Loopback.group()) {
            $0.eventHandlers = [EventHandler(filter: ["searching"], command: command)]
            $0.eventHandlerTimeout = .seconds(1)
        }
        defer { a.shutdown(); a.waitUntilFinished() }
        XCTAssertTrue(Loopback.eventually(20) { a.eventHandlerStats.timedOut == 1 }, "\(a.eventHandlerStats)")
        let sleeper = try XCTUnwrap(Int32(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        XCTAssertTrue(Loopback.eventually { Self.isGone(sleeper) }, "the handler's own child was killed with its group")
        XCTAssertEqual(a.eventHandlerStats.failed, 0)
        XCTAssertEqual(a.eventHandlerStats.running, 0)
        XCTAssertTrue(a.metricsText().contains("starling_event_handler_runs_total{outcome=\"timed_out\"} 1"))
    }

    /// Gone, or a zombie nobody reaped yet (an orphan waits for init, which a container's
    /// first process may be slow to be).
    private static func isGone(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return true }
        return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }

    func testConcurrencyCapHolds() throws {
        // issue 18 event handlers: 8 runs for one event, at most 2 at once. Each run counts the
        // runs in progress (marker files) as it starts; a slot is freed only once a run is reaped,
        // after it removed its marker, so no count may exceed the cap.
        let running = "\(folder)/running"
        try FileManager.default.createDirectory(atPath: running, withIntermediateDirectories: true)
        let command = "touch \(running)/$$; ls \(running) | wc -l >> \(folder)/counts; sleep 0.2; rm \(running)/$$"
        let a = try Loopback.agent("hn", group: Loopback.group()) {
            $0.eventHandlers = Array(repeating: EventHandler(filter: ["searching"], command: command), count: 8)
            $0.eventHandlerConcurrency = 2
        }
        defer { a.shutdown(); a.waitUntilFinished() }
        XCTAssertTrue(Loopback.eventually(30) { a.eventHandlerStats.succeeded == 8 }, "\(a.eventHandlerStats)")
        let counts = try String(contentsOfFile: "\(folder)/counts", encoding: .utf8).split(separator: "\n")
            .compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        XCTAssertEqual(counts.count, 8)
        XCTAssertTrue(counts.allSatisfy { (1...2).contains($0) }, "runs in progress seen at each start: \(counts)")
        XCTAssertEqual(a.eventHandlerStats.dropped, 0)
    }

    func testCoalescingRunsTheHandlerForTheLatestOfABurst() async throws {
        // issue 18 coalescing: one slot, a slow handler; five `deploy` events in a burst. The
        // first (or second) runs; the rest wait, each newer one taking the waiting one's place,
        // so the handler ends with the fifth. Without coalescing every one runs.
        for coalesce in [true, false] {
            let out = "\(folder)/payloads-\(coalesce)"
            let a = try Loopback.agent("hc\(coalesce)", group: Loopback.group()) {
                $0.eventHandlers = [EventHandler(filter: ["user:deploy"], command: "sleep 0.3; echo $STARLING_PAYLOAD >> \(out)")]
                $0.eventHandlerConcurrency = 1
                $0.eventHandlerCoalesce = coalesce
            }
            defer { a.shutdown(); a.waitUntilFinished() }
            for index in 1...5 { _ = try await a.send(event: "deploy", payload: "\(index)", timeout: .milliseconds(10)) }
            let stats = { a.eventHandlerStats }
            XCTAssertTrue(Loopback.eventually(30) { stats().succeeded + stats().coalesced == 5 && stats().running == 0 && stats().queued == 0 }, "\(stats())")
            let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").map(String.init)
            XCTAssertEqual(lines.last, "5", "the latest event's run comes last")
            if coalesce {
                XCTAssertGreaterThanOrEqual(stats().coalesced, 3, "\(lines)")
                XCTAssertLessThanOrEqual(lines.count, 2, "\(lines)")
            } else {
                XCTAssertEqual(lines, ["1", "2", "3", "4", "5"])
                XCTAssertEqual(stats().coalesced, 0)
            }
        }
    }

    func testFailuresAreCounted() throws {
        // issue 18 event handlers: a non-zero exit, a signal and a spawn error each count as a
        // failure, logged, never a time-out.
        let a = try Loopback.agent("hf", group: Loopback.group()) {
            $0.eventHandlers = [EventHandler(filter: ["searching"], command: "exit 3"),
                                EventHandler(filter: ["searching"], command: "kill -KILL $$")]
        }
        defer { a.shutdown(); a.waitUntilFinished() }
        XCTAssertTrue(Loopback.eventually(20) { a.eventHandlerStats.failed == 2 }, "\(a.eventHandlerStats)")
        XCTAssertEqual(a.eventHandlerStats.started, 2)
        XCTAssertEqual(a.eventHandlerStats.timedOut, 0)
        XCTAssertTrue(a.metricsText().contains("starling_event_handler_runs_total{outcome=\"failed\"} 2"))
        #if DEBUG
        SyscallFaults.inject("posix_spawn", [EAGAIN])
        defer { SyscallFaults.clear() }
        let b = try Loopback.agent("hg", group: Loopback.group()) {
            $0.eventHandlers = [EventHandler(filter: ["searching"], command: "true")]
        }
        defer { b.shutdown(); b.waitUntilFinished() }
        XCTAssertTrue(Loopback.eventually(20) { b.eventHandlerStats.failed == 1 }, "\(b.eventHandlerStats)")
        XCTAssertEqual(b.eventHandlerStats.started, 0)
        #endif
    }

    func testFullQueueDropsTheOldestAndCountsIt() throws {
        // issue 18 event handlers: 300 runs for one event against one slot and a queue of 256:
        // the excess is dropped and counted, and what is still queued when the agent stops too.
        let a = try Loopback.agent("hq", group: Loopback.group()) {
            $0.eventHandlers = Array(repeating: EventHandler(filter: ["searching"], command: "sleep 60"), count: 300)
            $0.eventHandlerConcurrency = 1
        }
        XCTAssertTrue(Loopback.eventually(20) { a.eventHandlerStats.started == 1 }, "\(a.eventHandlerStats)")
        let before = a.eventHandlerStats
        // All 300 were queued at once, the oldest beyond 256 dropped, then one started.
        XCTAssertEqual(before.dropped, UInt64(300 - EventHandler.queueLimit), "\(before)")
        XCTAssertEqual(before.queued, EventHandler.queueLimit - 1)
        a.shutdown()
        XCTAssertTrue(a.waitUntilFinished())
        XCTAssertTrue(Loopback.eventually { a.eventHandlerStats.running == 0 }, "the running one got SIGTERM at stop")
        let after = a.eventHandlerStats
        XCTAssertEqual(after.started + after.dropped, 300, "\(after)")
        XCTAssertEqual(after.timedOut + after.failed, 0, "a run stopped with the agent is neither: \(after)")
    }

    func testCommandLineFlagsAndStats() throws {
        // issue 18 event handlers: --on-event on the CLI; counts in `stats`; bad specs exit 2.
        try Loopback.requireMulticast()
        let cluster = Cluster()
        try cluster.start("hs", ["--on-event", "searching,alone=exit 4", "--on-event-concurrency", "1", "--on-event-timeout", "5"])
        var failed: Double?
        XCTAssertTrue(Loopback.eventually(20) {
            let output = (try? cluster.cli(["stats", "--json"]))?.1 ?? ""
            // One agent answered: one object (several: an array of them).
            let json = try? JSON.parse(output)
            let reply = json?.arrayValue?.first ?? json
            failed = reply?["handlers_failed"]?.numberValue
            return failed == 2
        }, "handlers_failed: \(failed as Any); log: \(cluster.log("hs"))")
        XCTAssertTrue(cluster.log("hs").contains("exited with status 4"), cluster.log("hs"))
        for bad in [["--on-event", "joind=x"], ["--on-event", ""], ["--on-event", "FOO=bar x"],
                    ["--on-event-concurrency", "0"], ["--on-event-timeout", "-1"]] {
            let (code, _, errors) = try cluster.run("hb", bad)
            XCTAssertEqual(code, 2, "\(bad): \(errors)")
            XCTAssertTrue(errors.contains("usage:"), "\(bad): \(errors)")
        }
        let (_, help, _) = try Loopback.run(["help", "agent"])
        XCTAssertTrue(help.contains("--on-event [FILTER=]CMD"), help)
    }
}
