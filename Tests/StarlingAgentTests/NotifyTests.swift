import Foundation
import Glibc
import StarlingPOSIX
import StarlingTestSupport
import XCTest

/// systemd's readiness protocol (issue 20, Install): the test plays systemd with an AF_UNIX
/// datagram socket of its own, and `starling agent` children find it in NOTIFY_SOCKET.
final class NotifyTests: XCTestCase {
    // MARK: A real agent under a fake NOTIFY_SOCKET

    /// issue 20 (Install): READY=1 once the agent has synced with the agent already running,
    /// then STOPPING=1 after SIGTERM, in that order, each once.
    func testReadyOnceSyncedThenStoppingOnSIGTERM() throws {
        try Loopback.requireMulticast()
        let cluster = Cluster()
        let systemd = try FakeSystemd(folder: cluster.folder)
        try cluster.start("peer")
        XCTAssertTrue(Loopback.eventually { ((try? cluster.views()) ?? [:])["peer"] != nil }, "peer did not start: \(cluster.log("peer"))")
        let child = try start("n", in: cluster, environment: ["NOTIFY_SOCKET": systemd.address.text])
        XCTAssertTrue(Loopback.eventually(20) { systemd.received().contains { $0.hasPrefix("READY=1") } },
            "no READY=1: \(systemd.messages); log:\n\(cluster.log("n"))")
        let ready = try XCTUnwrap(systemd.messages.first { $0.hasPrefix("READY=1") })
        XCTAssertEqual(ready, "READY=1\nSTATUS=synced with 1 other node")
        child.signal(SIGTERM)
        XCTAssertEqual(child.wait(timeoutMillis: 10_000), 0, cluster.log("n"))
        cluster.children["n"] = nil
        XCTAssertTrue(Loopback.eventually { systemd.received().contains { $0.hasPrefix("STOPPING=1") } }, "no STOPPING=1: \(systemd.messages)")
        XCTAssertEqual(systemd.messages.filter { $0.hasPrefix("READY=1") || $0.hasPrefix("STOPPING=1") },
            [ready, "STOPPING=1\nSTATUS=stopping"], "READY once, then STOPPING once")
    }

    /// issue 20 (Install): with WATCHDOG_USEC=200000 the agent (alone here) feeds the watchdog
    /// from its loop, every 100 ms; READY=1 says it is alone.
    func testWatchdogIsFedWhenAsked() throws {
        try Loopback.requireMulticast()
        let cluster = Cluster()
        let systemd = try FakeSystemd(folder: cluster.folder)
        let child = try start("w", in: cluster, environment: ["NOTIFY_SOCKET": systemd.address.text, "WATCHDOG_USEC": "200000"])
        XCTAssertTrue(Loopback.eventually(20) {
            let messages = systemd.received()
            return messages.filter { $0 == "WATCHDOG=1" || $0.hasSuffix("\nWATCHDOG=1") }.count >= 2 && messages.contains { $0.hasPrefix("READY=1") }
        }, "watchdog not fed twice, or no READY: \(systemd.messages); log:\n\(cluster.log("w"))")
        XCTAssertTrue(systemd.messages.contains { $0.hasPrefix("READY=1\nSTATUS=alone") }, "\(systemd.messages)")
        XCTAssertTrue(cluster.log("w").contains("WATCHDOG=1 every 100 ms"), cluster.log("w"))
        child.signal(SIGTERM)
        XCTAssertEqual(child.wait(timeoutMillis: 10_000), 0, cluster.log("w"))
        cluster.children["w"] = nil
        XCTAssertTrue(Loopback.eventually { systemd.received().contains { $0.hasPrefix("STOPPING=1") } }, "no STOPPING=1: \(systemd.messages)")
    }

    /// issue 20 (Install): an over-long NOTIFY_SOCKET and a WATCHDOG_USEC that is not a number
    /// are ignored with one log line each; a socket nobody listens on fails every send, which is
    /// logged once and never fatal. The agent runs and stops cleanly in both cases.
    func testHostileEnvironmentIsIgnoredWithoutACrash() throws {
        try Loopback.requireMulticast()
        let cluster = Cluster()
        let long = "/" + String(repeating: "x", count: 300)
        _ = try start("long", in: cluster, environment: ["NOTIFY_SOCKET": long, "WATCHDOG_USEC": "99999999999999999999999999"])
        // Ten turns of the watchdog (every 10 ms) towards nobody.
        let nobody = "\(cluster.folder)/nobody.sock"
        _ = try start("deaf", in: cluster, environment: ["NOTIFY_SOCKET": nobody.utf8.count < 100 ? nobody : "@starling-nobody-\(UUID())",
                                                       "WATCHDOG_USEC": "20000"])
        for name in ["long", "deaf"] {
            XCTAssertTrue(Loopback.eventually(20) { (try? cluster.cli(["ping", "--to", name]).0) == 0 }, "\(name) does not answer: \(cluster.log(name))")
        }
        XCTAssertTrue(Loopback.eventually { cluster.log("deaf").contains("mingle: synced") && cluster.log("deaf").contains("failed") }, cluster.log("deaf"))
        for name in ["long", "deaf"] {
            let child = try XCTUnwrap(cluster.children[name])
            child.signal(SIGTERM)
            XCTAssertEqual(child.wait(timeoutMillis: 10_000), 0, "\(name):\n\(cluster.log(name))")
            cluster.children[name] = nil
        }
        let longLog = cluster.log("long")
        XCTAssertEqual(lines(longLog, containing: "NOTIFY_SOCKET"), 1, longLog)
        XCTAssertEqual(lines(longLog, containing: "is 301 bytes, more than the 107"), 1, longLog)
        XCTAssertEqual(lines(longLog, containing: "WATCHDOG"), 0, "no socket, so the watchdog is not looked at: \(longLog)")
        let deafLog = cluster.log("deaf")
        XCTAssertEqual(lines(deafLog, containing: "failed"), 1, "one line for every failed send: \(deafLog)")
    }

    // MARK: The environment, read without an agent

    /// issue 20 (Install): every hostile WATCHDOG_USEC is ignored with one note; none traps.
    func testHostileWatchdogValuesAreIgnored() {
        let socket = "/run/systemd/notify"
        for value in ["", "abc", "-1", "+5", " 5", "5 ", "1e6", "0x10", "٣", "0", "999", "18446744073709551615",
                      "18446744073709551616", "99999999999999999999999999999999999999"] {
            let settings = notify(["NOTIFY_SOCKET": socket, "WATCHDOG_USEC": value])
            XCTAssertNil(settings.watchdogInterval, "WATCHDOG_USEC '\(value)'")
            XCTAssertEqual(settings.ignored.count, 1, "WATCHDOG_USEC '\(value)': \(settings.ignored)")
            XCTAssertEqual(settings.socket?.text, socket, "the socket stays usable")
        }
        XCTAssertEqual(notify(["NOTIFY_SOCKET": socket, "WATCHDOG_USEC": "200000"]).watchdogInterval, 100_000_000)
        XCTAssertEqual(notify(["NOTIFY_SOCKET": socket, "WATCHDOG_USEC": "1000"]).watchdogInterval, 500_000)
        // Huge but representable: fed at least hourly, never an overflow.
        XCTAssertEqual(notify(["NOTIFY_SOCKET": socket, "WATCHDOG_USEC": "18446744073709551614"]).watchdogInterval, 3_600_000_000_000)
        // WATCHDOG_PID: this process's, another's (silently not ours), or garbage (noted).
        XCTAssertEqual(notify(["NOTIFY_SOCKET": socket, "WATCHDOG_USEC": "200000", "WATCHDOG_PID": "4242"]).watchdogInterval, 100_000_000)
        let other = notify(["NOTIFY_SOCKET": socket, "WATCHDOG_USEC": "200000", "WATCHDOG_PID": "4243"])
        XCTAssertNil(other.watchdogInterval)
        XCTAssertEqual(other.ignored, [])
        for pid in ["", "x", "-4242", "99999999999", "4242 "] {
            let settings = notify(["NOTIFY_SOCKET": socket, "WATCHDOG_USEC": "200000", "WATCHDOG_PID": pid])
            XCTAssertNil(settings.watchdogInterval, "WATCHDOG_PID '\(pid)'")
            XCTAssertEqual(settings.ignored.count, 1, "WATCHDOG_PID '\(pid)'")
        }
        // No socket: nothing to feed, nothing to say.
        XCTAssertEqual(notify(["WATCHDOG_USEC": "200000"]), notify([:]))
    }

    /// issue 20 (Install): a NOTIFY_SOCKET longer than sun_path, relative, or empty is ignored
    /// with one note; the longest that fit are accepted.
    func testHostileNotifySocketsAreIgnored() {
        let capacity = UnixSocketAddress.capacity
        XCTAssertEqual(capacity, 108)
        for value in ["", "@", "relative/notify", "vsock:2:9999", "/" + String(repeating: "p", count: capacity - 1),
                      "@" + String(repeating: "a", count: capacity), "/" + String(repeating: "p", count: 100_000)] {
            let settings = notify(["NOTIFY_SOCKET": value, "WATCHDOG_USEC": "200000"])
            XCTAssertNil(settings.socket, "NOTIFY_SOCKET of \(value.utf8.count) bytes")
            XCTAssertNil(settings.watchdogInterval)
            XCTAssertEqual(settings.ignored.count, 1, "\(settings.ignored)")
            XCTAssertLessThan(settings.ignored.joined().utf8.count, 400, "the note quotes a bounded part of the value")
        }
        let longestPath = "/" + String(repeating: "p", count: capacity - 2)
        let longestAbstract = "@" + String(repeating: "a", count: capacity - 1)
        for value in [longestPath, longestAbstract, "/run/systemd/notify", "@/org/freedesktop/systemd1/notify"] {
            XCTAssertEqual(notify(["NOTIFY_SOCKET": value]).socket?.text, value)
        }
    }

    /// issue 20 (Install): the datagram is `KEY=VALUE` lines; a control character in a value
    /// cannot start a field of its own.
    func testDatagramKeepsEachFieldOnItsLine() {
        let bytes = SystemdNotify.datagram([("READY", "1"), ("STATUS", "a\nWATCHDOG=trigger\r\u{7f}")])
        XCTAssertEqual(String(decoding: bytes, as: UTF8.self), "READY=1\nSTATUS=a WATCHDOG=trigger  ")
    }

    /// issue 20 (Install): the AF_UNIX datagram calls on an abstract name and on a path; the
    /// path is removed when its socket goes.
    func testUnixDatagramRoundTrip() throws {
        let abstract = try UnixSocketAddress("@starling-test-\(UUID())")
        let receiver = try UnixDatagramSocket.bound(to: abstract)
        let sender = try UnixDatagramSocket.sender()
        XCTAssertNil(try receiver.receive())
        XCTAssertTrue(try sender.send(Array("READY=1".utf8), to: abstract))
        XCTAssertEqual(try receiver.receive().map { String(decoding: $0, as: UTF8.self) }, "READY=1")

        let path = NSTemporaryDirectory() + "stn-\(UUID().uuidString.prefix(8)).sock"
        try XCTSkipIf(path.utf8.count >= UnixSocketAddress.capacity, "TMPDIR is too long for a socket path")
        var bound: UnixDatagramSocket? = try UnixDatagramSocket.bound(to: UnixSocketAddress(path))
        XCTAssertTrue(try sender.send(Array("WATCHDOG=1".utf8), to: UnixSocketAddress(path)))
        XCTAssertEqual(try bound?.receive(maxBytes: 4).map { String(decoding: $0, as: UTF8.self) }, "WATC", "cut to maxBytes")
        XCTAssertTrue(FileManager.default.fileExists(atPath: path))
        bound = nil
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
        XCTAssertThrowsError(try sender.send(Array("READY=1".utf8), to: UnixSocketAddress(path)), "nobody bound: ENOENT")
    }

    // MARK: Helpers

    private func notify(_ environment: [String: String]) -> SystemdNotify {
        SystemdNotify(environment: { environment[$0] }, processID: 4242)
    }

    private func lines(_ text: String, containing part: String) -> Int {
        text.split(separator: "\n").filter { $0.contains(part) }.count
    }

    /// Starts agent `name` of `cluster` with `environment` added; the cluster stops it.
    private func start(_ name: String, in cluster: Cluster, environment: [String: String]) throws -> ChildProcess {
        let child = try ChildProcess(Loopback.binary, cluster.agents.arguments(name), stderr: cluster.agents.logFile(name), environment: environment)
        cluster.children[name] = child
        return child
    }
}

/// The service manager's end: a datagram socket in the test's folder (or, when that path would
/// not fit sun_path, an abstract name), and what arrived on it.
private final class FakeSystemd {
    let socket: UnixDatagramSocket
    let address: UnixSocketAddress
    private(set) var messages: [String] = []

    init(folder: String) throws {
        let path = "\(folder)/notify.sock"
        address = try UnixSocketAddress(path.utf8.count < UnixSocketAddress.capacity ? path : "@starling-test-\(UUID())")
        socket = try UnixDatagramSocket.bound(to: address)
    }

    /// Reads what is waiting; returns every message so far.
    func received() -> [String] {
        while let bytes = try? socket.receive() { messages.append(String(decoding: bytes, as: UTF8.self)) }
        return messages
    }
}
