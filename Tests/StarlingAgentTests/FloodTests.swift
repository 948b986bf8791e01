import Foundation
@_spi(Testing) import Starling
import StarlingCore
import StarlingPOSIX
import XCTest

/// Issue 14, "Tests and checks": a flood of 100,000 hostile datagrams at a 3-agent cluster on
/// loopback, in the message set of version 2 (issue 16: PING/ACK with piggyback, PING_REQ, NACK,
/// CHANGE calling the agents themselves suspect or dead, extension areas). Afterwards all agents run, still hold each other alive, `ping` is answered by exactly
/// the three, and each agent's resident memory is back under twice its value before the flood
/// within 60 s.
///
/// About 30 s of sending and two busy agents: it runs when STARLING_FLOOD=1 (.ci/run does, in a
/// run of its own) so that everyday `swift test` stays short on a shared machine.
final class FloodTests: XCTestCase {
    static let count = 100_000
    /// Datagrams per second: 100,000 in about 25 s.
    static let rate = 4_000.0

    override func setUpWithError() throws {
        guard ProcessInfo.processInfo.environment["STARLING_FLOOD"] == "1" else {
            throw XCTSkip("the 100,000-datagram flood takes ~30 s of two busy cores: set STARLING_FLOOD=1 to run it (.ci/run does)")
        }
        try Loopback.requireMulticast()
    }

    func testClusterSurvivesHundredThousandHostileDatagrams() throws {
        let cluster = Cluster()
        let names = ["f1", "f2", "f3"]
        for name in names { try cluster.start(name) }
        XCTAssertTrue(Loopback.eventually(20) { ((try? cluster.views()) ?? [:]).values.filter { $0.count == 2 }.count == 3 },
            "no cluster before the flood: \((try? cluster.views()) ?? [:])")
        // Where each agent's unicast socket is, from its own `stats`.
        let stats = cluster.requestAll("stats", expecting: names)
        let unicast = names.compactMap { stats[$0]?["unicast"]?.stringValue.flatMap { Endpoint(parsing: $0) } }
        XCTAssertEqual(unicast.count, 3, "stats: \(stats)")
        guard unicast.count == 3 else { return }
        let agents = Dictionary(uniqueKeysWithValues: zip(names, unicast))
        XCTAssertTrue(unicast.allSatisfy { $0.ip.ipv4.map { $0 >> 24 == 127 } == true }, "agents must listen on loopback: \(unicast)")
        let before = names.map { resident(cluster, $0) }
        // The agents' own ids, so that PINGs, PING_REQs and CHANGE entries also name them.
        let ids = names.compactMap { stats[$0]?["id"]?.stringValue.flatMap { NodeID(hex: $0) } }
        XCTAssertEqual(ids.count, 3, "stats ids: \(stats.mapValues { $0["id"]?.plain ?? "?" })")

        let socket = try UDPSocket.unicast(interface: 0x7F00_0001, port: 0)
        var flood = FloodGenerator(seed: 16, safePorts: [socket.local.port, 0, 1, 65535] + unicast.map(\.port), agents: ids)
        let destinations = [cluster.group] + unicast
        let start = Date()
        var refused = 0
        for index in 0..<Self.count {
            let destination = destinations[index % destinations.count]
            if (try? socket.send(flood.datagram(index), to: destination)) != true { refused += 1 }
            if index % 200 == 199 {
                // Pace: never ahead of `rate`, so the flood takes bounded time and the kernel keeps up.
                let due = Double(index + 1) / Self.rate - Date().timeIntervalSince(start)
                if due > 0 { usleep(UInt32(due * 1_000_000)) }
            }
            // Sending is bounded in time as well as in count.
            if Date().timeIntervalSince(start) > 60 { break }
        }
        let floodSeconds = Date().timeIntervalSince(start)
        let floodEnd = Date()

        let exits = names.compactMap { name in cluster.children[name]?.wait(timeoutMillis: 0).map { (name, $0) } }
        XCTAssertTrue(exits.isEmpty, "agents died during the flood (\(Int(floodSeconds)) s, \(refused) sends refused): "
            + exits.map { "\($0) exit \($1): \(crashLines(cluster.log($0)))" }.joined(separator: "; "))
        guard exits.isEmpty else { return }
        var views: [String: [String: String]] = [:]
        XCTAssertTrue(Loopback.eventually(30) {
            views = agents.mapValues { view(cluster, at: $0, of: names) }
            return names.allSatisfy { name in names.allSatisfy { $0 == name || views[name]?[$0] == "alive" } }
        }, "members lost each other: \(views); member counts by status: "
            + "\(cluster.requestAll("stats", expecting: names).mapValues { $0["members"]?.serialized() ?? "?" })")
        var pingers: Set<String> = []
        XCTAssertTrue(Loopback.eventually(30) {
            pingers = Set(cluster.requestAll("ping").keys)
            return pingers == Set(names)
        }, "ping answered by \(pingers.sorted())")
        var after: [UInt64] = []
        // The 60 s count from the end of the flood (at least 10 s remain for this check).
        XCTAssertTrue(Loopback.eventually(max(10, 60 - Date().timeIntervalSince(floodEnd))) {
            after = names.map { resident(cluster, $0) }
            return zip(before, after).allSatisfy { $1 < 2 * $0 }
        }, "resident bytes before \(before), 60 s after the flood \(after); members by status "
            + "\(cluster.requestAll("stats", expecting: names).mapValues { $0["members"]?.serialized() ?? "?" })")
        // The figures for the record (not asserted beyond the above).
        print("flood: \(Self.count) datagrams in \(Int(floodSeconds)) s (\(refused) sends refused); resident bytes before \(before), after \(after); "
            + "members by status \(cluster.requestAll("stats", expecting: names).mapValues { $0["members"]?.serialized() ?? "?" })")
    }

    // MARK: Observations

    /// How the agent at `endpoint` sees the agents `names` (asked by unicast: after a flood its
    /// view may hold many spoofed members, and one reply at a time is easier on the socket).
    func view(_ cluster: Cluster, at endpoint: Endpoint, of names: [String]) -> [String: String] {
        let options = RequestOptions(expected: 1, idleTimeout: 1_000_000_000, deadline: 10_000_000_000)
        guard let reply = (try? cluster.client().request("members", to: endpoint, options: options))?.replies.first else { return [:] }
        var view: [String: String] = [:]
        for row in reply.json["members"]?.arrayValue ?? [] {
            if let name = row["name"]?.stringValue, names.contains(name) { view[name] = row["status"]?.stringValue }
        }
        return view
    }

    /// What an agent's log says about its end: Swift's fatal error and crash lines, else its tail.
    func crashLines(_ log: String) -> String {
        let lines = log.split(separator: "\n").filter { $0.contains("Fatal error") || $0.contains("crashed") || $0.contains("Crash") }
        return lines.isEmpty ? String(log.suffix(300)) : lines.prefix(3).joined(separator: " | ")
    }

    /// Resident bytes of an agent process, from /proc (0 once it is gone).
    func resident(_ cluster: Cluster, _ name: String) -> UInt64 {
        cluster.children[name].map { System.residentBytes(of: $0.pid) } ?? 0
    }
}

extension Cluster {
    /// One request to the group; each agent's JSON reply by name (all that answer within 2 s, or
    /// the first `names.count` when names are given).
    func requestAll(_ command: String, expecting names: [String] = []) -> [String: JSON] {
        let options = RequestOptions(expected: names.isEmpty ? nil : names.count, idleTimeout: 500_000_000, deadline: 2_000_000_000)
        guard let result = try? client().request(command, options: options) else { return [:] }
        return Dictionary(result.replies.map { ($0.name, $0.json) }, uniquingKeysWith: { first, _ in first })
    }
}

/// Hostile datagrams of all 19 types of version 2: fields at the edges of their widths, spoofed
/// senders (a new id for every datagram), the agents' own ids in one target or entry of eight
/// (suspicions and deaths to refute, PING_REQs to relay), names and clusters that differ only in
/// Unicode normalisation, version ranges and extension areas, and a third of them with a few
/// bytes changed. Every address and port they carry that an agent
/// may send to is on loopback (`safePorts`), so the agents' answers stay on this host.
struct FloodGenerator {
    var rng: SplitMix64
    let safePorts: [UInt16]
    /// The agents' node ids.
    let agents: [NodeID]
    let codec = Codec()
    static let names = ["flood", "caf\u{E9}", "cafe\u{301}", String(repeating: "n", count: 64), "x\ny\u{0}", "*"]
    static let topics = ["jobs", "caf\u{E9}", "cafe\u{301}", String(repeating: "t", count: 64)]
    static let args = ["-1", "0", "99999999999999999999", "-9223372036854775808", "caf\u{E9}", "cafe\u{301}",
        String(repeating: "r", count: 128)]
    static let commands = ["ping", "stats", "members", "revoke", "revoked", "clock", "elect", "leader", "watch", "shutdown", "nope"]

    init(seed: UInt64, safePorts: [UInt16], agents: [NodeID] = []) {
        rng = SplitMix64(seed: seed)
        self.safePorts = safePorts
        self.agents = agents
    }

    mutating func pick<T>(_ items: [T]) -> T { items[Int(rng.next() % UInt64(items.count))] }

    /// A value of `T`'s width, edges first.
    mutating func edge<T: FixedWidthInteger & UnsignedInteger>(_ type: T.Type) -> T {
        switch rng.next() % 8 {
        case 0: 0
        case 1: 1
        case 2: T.max - 1
        case 3: T.max
        case 4: T.max >> 1
        case 5: (T.max >> 1) + 1
        default: T(truncatingIfNeeded: rng.next())
        }
    }

    mutating func id(_ index: Int) -> NodeID { NodeID(high: 0xF100D, low: rng.next() % 4 == 0 ? 1 : UInt64(index)) }

    /// A spoofed id, or one of the agents' (one in eight).
    mutating func subject(_ index: Int) -> NodeID {
        !agents.isEmpty && rng.next() % 8 == 0 ? pick(agents) : id(index)
    }

    mutating func entries(_ index: Int) -> [MemberEntry] {
        (0..<pick([0, 1, 8, 40])).map { _ in
            var entry = MemberEntry(id: subject(Int(rng.next() % 100_000)), incarnation: edge(UInt32.self), status: pick(MemberStatus.allCases),
                endpoint: Endpoint(address: pick([0, 0x7F00_0001, 0x7F00_0002]), port: pick(safePorts)), name: pick(Self.names))
            // An IPv6 member now and then (unreachable in this version: skipped and counted).
            if rng.next() % 16 == 0 { entry.address = .ipv6(high: rng.next(), low: rng.next()) }
            return entry
        }
    }

    /// What this implementation speaks, or ranges it does not.
    mutating func versions() -> VersionRange {
        rng.next() % 4 == 0 ? VersionRange(lowest: edge(UInt8.self), highest: edge(UInt8.self)) : .spoken
    }

    mutating func payload(_ index: Int) -> Payload {
        let digest = SetDigest(count: edge(UInt32.self), hash: edge(UInt64.self))
        switch MessageType.allCases[index % MessageType.allCases.count] {
        case .announce: return .announce(Announcement(versions: versions(), memberCount: edge(UInt16.self), revoked: digest))
        case .goodbye: return .goodbye
        case .ping: return .ping(Ping(probeID: edge(UInt32.self), target: subject(index), revoked: digest, piggyback: entries(index)))
        case .ack: return .ack(Ping(probeID: edge(UInt32.self), target: subject(index), revoked: digest, piggyback: entries(index)))
        case .pingRequest: return .pingRequest(Probe(probeID: edge(UInt32.self), target: subject(index)))
        case .nack: return .nack(Probe(probeID: edge(UInt32.self), target: subject(index)))
        case .change:
            let list = entries(index)
            return list.isEmpty ? .goodbye : .change(list)
        case .members: return .members(MembersPage(replyWanted: rng.next() % 2 == 0, page: 0, pageCount: max(1, edge(UInt8.self)), entries: entries(index)))
        case .hello: return .hello(Hello(versions: versions(), requestID: edge(UInt32.self), revoked: digest))
        case .helloReply: return .helloReply(HelloReply(versions: versions(), requestID: edge(UInt32.self), memberCount: edge(UInt16.self), revoked: digest, members: entries(index)))
        case .pageRequest: return .pageRequest(PageRequest(requestID: edge(UInt32.self), bucketMask: edge(UInt64.self), maxPages: max(1, edge(UInt8.self)), cursor: "", until: pick(["", "z"])))
        case .page: return .page(RevokedPage(requestID: edge(UInt32.self), index: edge(UInt8.self), last: true,
            entries: (0..<pick([0, 1, 9])).map { _ in RevokedEntry(id: pick(Self.args), revokedAtMillis: edge(UInt64.self)) }))
        case .digestRequest: return .digestRequest(requestID: edge(UInt32.self))
        case .digestReply: return .digestReply(DigestReply(requestID: edge(UInt32.self), buckets: (0..<64).map { _ in digest }))
        case .candidacy: return .candidacy(Candidacy(term: edge(UInt64.self), topic: pick(Self.topics)))
        case .leader: return .leader(LeaderAnnouncement(term: edge(UInt64.self), leader: id(index), leaderStamp: edge(UInt64.self), topic: pick(Self.topics), leaderName: pick(Self.names)))
        case .vote: return .vote(Vote(term: edge(UInt64.self), candidate: id(index), candidateStamp: edge(UInt64.self), topic: pick(Self.topics)))
        case .controlRequest: return .controlRequest(ControlRequest(requestID: edge(UInt32.self),
            issuedMillis: pick([0, UInt64(Date().timeIntervalSince1970 * 1_000), edge(UInt64.self)]), command: pick(Self.commands), target: pick(["", "*", "f?"]),
            args: (0..<pick([0, 1, 2])).map { _ in pick(Self.args + Self.topics) }))
        case .userEvent: return .userEvent(UserEvent(requestID: edge(UInt32.self), sequence: max(1, edge(UInt32.self)), stamp: edge(UInt64.self) >> 1,
            name: pick(Self.topics), payload: pick(Self.args)))
        case .controlReply: return .controlReply(ControlReply(requestID: edge(UInt32.self), status: .ok, memberCount: edge(UInt16.self), page: 0, pageCount: max(1, edge(UInt16.self)), body: Array("{}".utf8)))
        }
    }

    /// Terms and stamps in the payload at most 2^63 − 1, the header stamp too (Protocol.md §4.2).
    static func lowered(_ message: Message) -> Message {
        var message = message
        message.header.stamp = min(message.header.stamp, LamportClock.max)
        switch message.payload {
        case .candidacy(var candidacy):
            candidacy.term = min(candidacy.term, Limits.maxTerm)
            message.payload = .candidacy(candidacy)
        case .leader(var leader):
            leader.term = min(leader.term, Limits.maxTerm)
            leader.leaderStamp = min(leader.leaderStamp, LamportClock.max)
            message.payload = .leader(leader)
        case .vote(var vote):
            vote.term = min(vote.term, Limits.maxTerm)
            vote.candidateStamp = min(vote.candidateStamp, LamportClock.max)
            message.payload = .vote(vote)
        default:
            break
        }
        return message
    }

    static func halved(_ payload: Payload) -> Payload? {
        switch payload {
        case .ping(var ping) where !ping.piggyback.isEmpty:
            ping.piggyback.removeLast(ping.piggyback.count / 2 + 1)
            return .ping(ping)
        case .ack(var ping) where !ping.piggyback.isEmpty:
            ping.piggyback.removeLast(ping.piggyback.count / 2 + 1)
            return .ack(ping)
        case .change(var entries) where entries.count > 1:
            entries.removeLast(entries.count / 2)
            return .change(entries)
        case .members(var page) where !page.entries.isEmpty:
            page.entries.removeLast(page.entries.count / 2 + 1)
            return .members(page)
        case .helloReply(var reply) where !reply.members.isEmpty:
            reply.members.removeLast(reply.members.count / 2 + 1)
            return .helloReply(reply)
        default:
            return nil
        }
    }

    /// An extension area on one datagram in sixteen (Protocol.md §3.4): types no agent knows, which
    /// it must skip.
    mutating func extensions() -> [Extension] {
        guard rng.next() % 16 == 0 else { return [] }
        // Distinct types: a repeated one makes the whole datagram invalid, not just the entry.
        let base = UInt8(truncatingIfNeeded: rng.next())
        return (0..<UInt8(1 + rng.next() % 3)).map { offset in
            Extension(type: base &+ offset, value: [UInt8](repeating: 0xEE, count: pick([0, 1, 255])))
        }
    }

    /// Datagram number `index`: well-formed (cut to fit), or with a few bytes changed.
    mutating func datagram(_ index: Int) -> [UInt8] {
        let header = Header(sequence: edge(UInt64.self), stamp: edge(UInt64.self), sender: id(index), incarnation: edge(UInt32.self),
            replyPort: pick(safePorts), cluster: pick(["starling", "starling", "starling", "caf\u{E9}", "Starling"]), name: pick(Self.names))
        // The encoder writes no stamp or term above 2^63 − 1: encode within it, then put the
        // stamp drawn back into the header's bytes (offset 16), so receivers see it too.
        var message = Self.lowered(Message(header: header, payload: payload(index), extensions: extensions()))
        var encoded = try? codec.encode(message)
        for _ in 0..<8 where encoded == nil {
            // Too long for one datagram: halve the list it carries (or send a bare GOODBYE).
            message.payload = Self.halved(message.payload) ?? .goodbye
            encoded = try? codec.encode(message)
        }
        var bytes = encoded ?? []
        if header.stamp > LamportClock.max, bytes.count >= 24 {
            withUnsafeBytes(of: header.stamp.bigEndian) { bytes.replaceSubrange(16..<24, with: $0) }
        }
        guard rng.next() % 3 == 0 else { return bytes }
        for _ in 0..<(1 + rng.next() % 4) where !bytes.isEmpty {
            let at = Int(rng.next() % UInt64(bytes.count))
            switch rng.next() % 4 {
            case 0: bytes[at] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
            case 1: bytes[at] = pick([0, 0xFF, 0x7F, 0x80])
            case 2: bytes.removeLast(bytes.count - at)
            default: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: at)
            }
        }
        return bytes
    }
}
