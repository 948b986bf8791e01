import Foundation
@_spi(Testing) import Starling
import StarlingCore
import XCTest

/// Several agents embedded in one process through the public API.
final class EmbeddedAgentTests: XCTestCase {
    override func setUpWithError() throws { try Loopback.requireMulticast() }

    func testEmbeddedAgentsRevokeElectAndRequest() async throws {
        let group = Loopback.group()
        let agents = try (1...3).map { try Loopback.agent("e\($0)", group: group) }
        defer { for agent in agents { agent.shutdown() }; for agent in agents { agent.waitUntilFinished() } }
        XCTAssertTrue(Loopback.eventually { agents.allSatisfy { $0.members().filter(\.isLive).count == 2 } })
        let revoke = try await agents[0].revoke(["a", "b"])
        XCTAssertTrue(revoke.isComplete, "\(revoke)")
        XCTAssertEqual(Set(revoke.acknowledged.map(\.name)), ["e2", "e3"])
        XCTAssertTrue(agents.allSatisfy { $0.isRevoked("a") && $0.isRevoked("b") })
        // More ids than one request holds: several requests, every reply kept.
        let many = (0..<150).map { "d9b1f8a2-5c1e-4f5e-9a51-\(String(100_000_000_000 + $0))" }
        let bulk = try await agents[0].revoke(many)
        XCTAssertTrue(bulk.isComplete, "every agent acknowledged every request: \(bulk)")
        XCTAssertEqual(bulk.acknowledged.count, 2)
        XCTAssertTrue(agents.allSatisfy { $0.revokedCount == 152 })
        let elected = try await agents[1].elect("sched")
        XCTAssertTrue(Loopback.eventually { agents.allSatisfy { $0.leader(of: "sched") == elected } },
            "\(elected) \(agents.map { $0.leader(of: "sched") as Any })")
        XCTAssertEqual(agents.filter { $0.isLeader(of: "sched") }.count, 1)
        let ping = try await agents[2].ping()
        XCTAssertEqual(Set(ping.map(\.name)), ["e1", "e2"])
    }

    func testAgentsWithDifferentKeysNeverMeet() throws {
        let group = Loopback.group()
        let one = try Loopback.agent("k1", group: group) { $0.keys = [AuthKey(Array(repeating: 1, count: 32))] }
        let two = try Loopback.agent("k2", group: group) { $0.keys = [AuthKey(Array(repeating: 2, count: 32))] }
        let open = try Loopback.agent("k0", group: group)
        defer { for agent in [one, two, open] { agent.shutdown(); agent.waitUntilFinished() } }
        XCTAssertTrue(Loopback.eventually { one.counters.drops["bad_tag", default: 0] > 2 && open.counters.drops["unexpected_tag", default: 0] > 2 })
        usleep(300_000)
        XCTAssertTrue(one.members().isEmpty && two.members().isEmpty && open.members().isEmpty,
            "\(one.members().map(\.name)) \(two.members().map(\.name)) \(open.members().map(\.name))")
        XCTAssertGreaterThan(one.counters.drops["missing_tag", default: 0], 0, "the keyless agent's datagrams are refused")
    }

    func testKeyRotationWorksInBothOrders() throws {
        let old = AuthKey(Array(repeating: 1, count: 32))
        let new = AuthKey(Array(repeating: 2, count: 32))
        // Mid-rotation: one agent already signs with the new key, the other still with the old.
        for (first, second) in [([old, new], [new, old]), ([new, old], [old, new])] {
            let group = Loopback.group()
            let a = try Loopback.agent("r1", group: group) { $0.keys = first }
            let b = try Loopback.agent("r2", group: group) { $0.keys = second }
            defer { for agent in [a, b] { agent.shutdown(); agent.waitUntilFinished() } }
            XCTAssertTrue(Loopback.eventually { a.members().first?.status == .alive && b.members().first?.status == .alive })
        }
    }

    func testUnicastSeedsWithoutMulticast() throws {
        let group = Loopback.group()
        let first = try Loopback.agent("u1", group: group) { $0.multicast = false; $0.seeds = [Endpoint(address: 0x7F00_0001, port: 1)] }
        defer { first.shutdown(); first.waitUntilFinished() }
        let seed = [first.endpoint]
        let others = try (2...3).map { index in try Loopback.agent("u\(index)", group: group) { $0.multicast = false; $0.seeds = seed } }
        defer { for agent in others { agent.shutdown() }; for agent in others { agent.waitUntilFinished() } }
        XCTAssertTrue(Loopback.eventually { ([first] + others).allSatisfy { $0.members().filter { $0.status == .alive }.count == 2 } },
            "\(([first] + others).map { $0.members().map(\.name) })")
    }

    func testBadInterfaceAndBusyPortAreTypedErrors() throws {
        var config = Configuration(name: "x")
        config.interface = "no-such-if0"
        XCTAssertThrowsError(try Agent(config)) { error in
            XCTAssertTrue("\(error)".contains("no IPv4 interface"), "\(error)")
        }
        let group = Loopback.group()
        let first = try Loopback.agent("b1", group: group)
        defer { first.shutdown(); first.waitUntilFinished() }
        config = Configuration(name: "b2")
        config.group = group
        config.port = first.endpoint.port
        XCTAssertThrowsError(try Agent(config)) { error in XCTAssertTrue("\(error)".contains("in use"), "\(error)") }
    }

    func testInjectedLossIsToleratedAndPartitionsHeal() throws {
        let group = Loopback.group()
        let agents = try (1...3).map { index in try Loopback.agent("f\(index)", group: group) { $0.faults.receiveDropRate = 0.1 } }
        defer { for agent in agents { agent.shutdown() }; for agent in agents { agent.waitUntilFinished() } }
        XCTAssertTrue(Loopback.eventually { agents.allSatisfy { $0.members().filter(\.isLive).count == 2 } })
        // Cut f3 off from both sides; both detect it, then heal.
        agents[2].setFaults(FaultSettings(blocked: [agents[0].endpoint, agents[1].endpoint]))
        agents[0].setFaults(FaultSettings(blocked: [agents[2].endpoint]))
        agents[1].setFaults(FaultSettings(blocked: [agents[2].endpoint]))
        XCTAssertTrue(Loopback.eventually { agents[0].members().first { $0.name == "f3" }?.status == .dead })
        for agent in agents { agent.setFaults(FaultSettings()) }
        XCTAssertTrue(Loopback.eventually(15) { agents.allSatisfy { $0.members().filter { $0.status == .alive }.count == 2 } },
            "\(agents.map { $0.members().map { "\($0.name)=\($0.status.name)" } })")
    }
}
