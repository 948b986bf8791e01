import Foundation
@_spi(Testing) @testable import Starling
import StarlingCore
import StarlingPOSIX
import Synchronization
import XCTest

/// issue 18, user events: `agent.send(event:payload:)` and `starling event` deliver once to every
/// live agent (the origin included), in ``Agent/events``, and to `--on-event 'user:NAME=…'`
/// handlers with the payload in the event's JSON. Real agents on loopback; every wait is a
/// condition with a generous deadline.
final class UserEventAgentTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws {
        try Loopback.requireMulticast()
        folder = NSTemporaryDirectory() + "starling-uevents-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// Collects the user events an agent delivers.
    final class Deliveries: Sendable {
        let list = Mutex<[UserEventDelivery]>([])
        var all: [UserEventDelivery] { list.withLock { $0 } }

        init(_ agent: Agent) {
            agent.onEvent { [self] event in
                if let cluster = ClusterEvent(event), case .userEvent(let delivery) = cluster { self.list.withLock { $0.append(delivery) } }
            }
        }
    }

    func testSendDeliversOnceEverywhereAndRunsMatchingHandlers() async throws {
        // issue 18 user events: the API sends, every agent delivers once, a `user:deploy` handler
        // gets the event as JSON on stdin with the payload, a `user:other` handler does not run.
        let group = Loopback.group()
        let a = try Loopback.agent("ua", group: group) { $0.cluster = "uc" }
        defer { a.shutdown(); a.waitUntilFinished() }
        let b = try Loopback.agent("ub", group: group) {
            $0.cluster = "uc"
            $0.eventHandlers = [EventHandler(filter: ["user:deploy"], command: "cat > \(self.folder)/stdin; env > \(self.folder)/env"),
                                EventHandler(filter: ["user:other"], command: "touch \(self.folder)/other")]
        }
        defer { b.shutdown(); b.waitUntilFinished() }
        let c = try Loopback.agent("uc", group: group) { $0.cluster = "uc" }
        defer { c.shutdown(); c.waitUntilFinished() }
        let seen = [a, b, c].map(Deliveries.init)
        XCTAssertTrue(Loopback.eventually(20) { [a, b, c].allSatisfy { $0.members().filter(\.isLive).count == 2 } }, "the three see each other")

        let result = try await a.send(event: "deploy", payload: "v9 {\"x\":1}")
        XCTAssertTrue(result.isComplete, "\(result)")
        XCTAssertEqual(result.acknowledged.map(\.name).sorted(), ["ub", "uc"])
        XCTAssertEqual(result.sequence, 1)
        XCTAssertTrue(Loopback.eventually(20) { seen.allSatisfy { $0.all.count == 1 } }, "\(seen.map(\.all))")
        for deliveries in seen {
            XCTAssertEqual(deliveries.all.first?.name, "deploy")
            XCTAssertEqual(deliveries.all.first?.payload, "v9 {\"x\":1}")
            XCTAssertEqual(deliveries.all.first?.origin, "ua")
            XCTAssertEqual(deliveries.all.first?.stamp, result.stamp)
        }
        XCTAssertTrue(Loopback.eventually(20) { b.eventHandlerStats.succeeded == 1 }, "\(b.eventHandlerStats)")
        let json = try JSON.parse(try String(contentsOfFile: "\(folder)/stdin", encoding: .utf8))
        XCTAssertEqual(json["event"]?.stringValue, "user")
        XCTAssertEqual(json["name"]?.stringValue, "deploy")
        XCTAssertEqual(json["payload"]?.stringValue, "v9 {\"x\":1}")
        XCTAssertEqual(json["origin"]?.stringValue, "ua")
        let environment = try String(contentsOfFile: "\(folder)/env", encoding: .utf8).split(separator: "\n").map(String.init)
        for line in ["STARLING_EVENT=user", "STARLING_NAME=ub", "STARLING_EVENT_NAME=deploy", "STARLING_ORIGIN=ua"] {
            XCTAssertTrue(environment.contains(line), "\(line) in \(environment)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(folder)/other"), "a handler for another event name does not run")

        for (name, payload) in [("bad,name", ""), ("big", String(repeating: "x", count: 1_025))] {
            let refused: AgentError?
            do {
                _ = try await a.send(event: name, payload: payload)
                refused = nil
            } catch {
                refused = error
            }
            XCTAssertEqual(refused?.isInvalidArgument, true, "\(name): a comma in the name, a payload over 1 KiB")
        }
    }

    func testTheCLISendsAnEventThroughOneAgent() throws {
        // issue 18 user events: `starling event NAME PAYLOAD` makes one agent the origin; every
        // agent delivers once. Bad flags are usage errors (exit 2).
        let group = Loopback.group()
        let a = try Loopback.agent("ea", group: group)
        defer { a.shutdown(); a.waitUntilFinished() }
        let b = try Loopback.agent("eb", group: group)
        defer { b.shutdown(); b.waitUntilFinished() }
        let seen = [a, b].map(Deliveries.init)
        XCTAssertTrue(Loopback.eventually(20) { [a, b].allSatisfy { $0.members().filter(\.isLive).count == 1 } })
        let base = ["--group", group.description, "--interface", "lo", "--timeout", "5"]

        let (code, out, errors) = try Loopback.run(["event", "deploy", "hello"] + base)
        XCTAssertEqual(code, 0, errors)
        XCTAssertTrue(out.hasPrefix("event deploy sent by e"), out)
        XCTAssertTrue(Loopback.eventually(20) { seen.allSatisfy { $0.all.map(\.payload) == ["hello"] } }, "\(seen.map(\.all))")

        let payloadFile = "\(folder)/payload"
        try "from a file".write(toFile: payloadFile, atomically: true, encoding: .utf8)
        let (fileCode, json, fileErrors) = try Loopback.run(["event", "release", "--file", payloadFile, "--to", "eb", "--json"] + base)
        XCTAssertEqual(fileCode, 0, fileErrors)
        XCTAssertEqual(try JSON.parse(json)["name"]?.stringValue, "eb")
        XCTAssertTrue(Loopback.eventually(20) { seen.allSatisfy { $0.all.map(\.payload) == ["hello", "from a file"] } }, "\(seen.map(\.all))")
        XCTAssertEqual(seen[0].all.last?.origin, "eb")

        try String(repeating: "x", count: 1_025).write(toFile: payloadFile, atomically: true, encoding: .utf8)
        for bad in [["event"], ["event", "a,b"], ["event", String(repeating: "n", count: 65)], ["event", "n", String(repeating: "p", count: 1_025)],
                    ["event", "n", "p", "--file", payloadFile], ["event", "n", "--file", payloadFile], ["event", "n", "--to", "e*"],
                    ["event", "n", "--no-such-flag"]] {
            let (badCode, _, badErrors) = try Loopback.run(bad + base)
            XCTAssertEqual(badCode, 2, "\(bad.prefix(3)): \(badErrors)")
        }
    }
}

private extension AgentError {
    var isInvalidArgument: Bool { if case .invalidArgument = self { true } else { false } }
}
