import Foundation
@_spi(Testing) import Starling
import StarlingCore
import StarlingPOSIX
import XCTest

/// Issue 19 (IPv6) with real processes and sockets, without root: IPv6 multicast does not flow
/// on `lo`, so these agents run with `--no-multicast` and seeds on `::1` (IPv6 unicast does).
/// Multicast over IPv6 is covered by `Tests/netns/lan.sh --ipv6` (root, in namespaces).
final class IPv6Tests: XCTestCase {
    /// Issue 19: mixing families, a zone naming another interface, an IPv6 group without an
    /// interface, an IPv6 address with a port but no brackets: each a usage error, exit 2.
    func testFlagMistakesAreUsageErrors() throws {
        let cases: [([String], String)] = [
            (["members", "--group", "[ff12::5354]:5354"], "needs --interface"),
            (["members", "--group", "[ff12::5354]:5354", "--interface", "lo", "--seed", "127.0.0.1:7000"], "one cluster is one family"),
            (["members", "--interface", "lo", "--group", "239.255.83.84:5354", "--seed", "[::1]:7000"], "one cluster is one family"),
            (["members", "--interface", "lo", "--seed", "[fe80::1%eth9]:7000", "--group", "[ff12::5354]:5354"], "one cluster runs on one interface"),
            (["members", "--interface", "lo", "--group", "ff12::5354:5354"], "in brackets"),
            (["members", "--interface", "lo", "--group", "ff12::5354"], "in brackets"),
            (["members", "--interface", "lo", "--group", "[fe80::1]:5354"], "not a multicast address"),
            (["agent", "--interface", "lo", "--group", "[ff12::5354]:5354", "--seed", "127.0.0.2:7000"], "one cluster is one family"),
            (["agent", "--interface", "lo", "--group", "[ff12::5354]:5354", "--block", "[fe80::1%eth9]:1"], "one cluster runs on one interface"),
            (["agent", "--interface", "lo", "--group", "[ff12::5354]:99999"], "bad or missing port"),
        ]
        for (args, message) in cases {
            let (code, _, errors) = try Loopback.run(args)
            XCTAssertEqual(code, 2, "\(args): \(errors)")
            XCTAssertTrue(errors.contains(message), "\(args): \(errors)")
        }
    }

    /// Issue 19 (review): an IPv6 seed with no --group gives the IPv6 default group; that group
    /// needs --interface like a named one (Protocol.md §2.5: no IPv6 default interface), exit 2.
    func testIPv6DefaultGroupFromASeedNeedsAnInterface() throws {
        for args in [["members", "--seed", "[::1]:7000"], ["agent", "--no-multicast", "--seed", "[::1]:7000"]] {
            let (code, _, errors) = try Loopback.run(args)
            XCTAssertEqual(code, 2, "\(args): \(errors)")
            XCTAssertTrue(errors.contains("needs --interface"), "\(args): \(errors)")
        }
    }

    /// Issue 19: the embedding API refuses a cluster of two families, and an IPv6 interface
    /// lookup gives the address and index the sockets need.
    func testConfigurationAndInterfaceLookup() throws {
        var config = Configuration(name: "six")
        config.group = Configuration.defaultGroup6
        XCTAssertEqual(config.group.description, "[ff12::5354]:5354")
        config.seeds = [Endpoint(address: 0x7F00_0001, port: 7000)]
        XCTAssertThrowsError(try config.validate()) { error in
            guard case AgentError.invalidConfiguration(let field, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(field, "seeds")
        }
        config.seeds = [try Endpoint.parse("[fe80::1]:7000").endpoint]
        XCTAssertNoThrow(try config.validate())
        config.group = try Endpoint.parse("[fe80::1]:5354").endpoint
        XCTAssertThrowsError(try config.validate(), "a unicast group")
        XCTAssertThrowsError(try Interface.resolve("no-such-if0", family: .ipv6)) { error in
            XCTAssertTrue("\(error)".contains("no IPv6 interface 'no-such-if0'"), "\(error)")
        }
        guard let loopback = try? Interface.resolve("lo", family: .ipv6) else { throw XCTSkip("no IPv6 on lo here") }
        XCTAssertEqual(loopback.address.description, "::1")
        XCTAssertGreaterThan(loopback.index, 0)
        XCTAssertEqual(try Interface.resolve("::1", family: .ipv6).name, "lo")
    }

    /// Issue 19: two agents on `::1` find each other by their seeds; `members` prints RFC 5952
    /// addresses; ping, revoke, elect and kill -9 detection work over IPv6.
    func testAgentsAndCommandsOverIPv6Unicast() throws {
        let cluster = Cluster()
        let ports = (UInt16.random(in: 20_000...39_999), UInt16.random(in: 40_000...59_999))
        let group = "[ff12::5354]:\(UInt16.random(in: 20_000...59_999))"
        let seed = { (port: UInt16) in "[::1]:\(port)" }
        func flags(_ port: UInt16, seed other: UInt16) -> [String] {
            ["--group", group, "--no-multicast", "--port", "\(port)", "--seed", seed(other)]
        }
        try cluster.start("six-a", flags(ports.0, seed: ports.1))
        try cluster.start("six-b", flags(ports.1, seed: ports.0))
        func cli(_ port: UInt16, _ args: [String]) -> (Int32, String, String) {
            (try? Loopback.run(args + ["--group", group, "--interface", "lo", "--seed", seed(port), "--timeout", "1"])) ?? (-1, "", "")
        }
        XCTAssertTrue(Loopback.eventually {
            let out = cli(ports.0, ["members"]).1
            return out.contains("[::1]:\(ports.1)") && out.contains("six-b") && !out.contains("suspect")
        }, "six-a never listed six-b at [::1]:\(ports.1): \(cli(ports.0, ["members"]))\n\(cluster.log("six-a"))")
        XCTAssertTrue(cli(ports.1, ["ping"]).1.contains("six-b"))
        XCTAssertEqual(cli(ports.0, ["revoke", "six-task"]).0, 0)
        XCTAssertTrue(Loopback.eventually { cli(ports.1, ["revoked", "--json"]).1.contains("six-task") }, "the revoke never reached six-b")
        XCTAssertTrue(cli(ports.1, ["elect", "jobs"]).1.contains("leader six-"))
        XCTAssertTrue(Loopback.eventually {
            let a = Self.leader(cli(ports.0, ["leader", "jobs", "--json"]).1), b = Self.leader(cli(ports.1, ["leader", "jobs", "--json"]).1)
            return a != nil && a == b
        }, "no agreed leader")
        cluster.kill("six-b")
        // Two members only: nobody confirms the suspicion, so it runs its full course (seconds).
        XCTAssertTrue(Loopback.eventually(30) {
            cli(ports.0, ["members"]).1.split(separator: "\n").contains { $0.hasPrefix("six-b") && $0.contains("dead") }
        }, "kill -9 not detected: \(cli(ports.0, ["members"]).1)")
    }

    /// The leader's name in `leader --json` output.
    static func leader(_ json: String) -> String? {
        let compact = json.replacingOccurrences(of: " ", with: "")
        guard let range = compact.range(of: "\"leader\":\"six-") else { return nil }
        return String(compact[range.upperBound...].prefix { $0 != "\"" })
    }
}
