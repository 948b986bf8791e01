import StarlingCore

/// Deterministic sample messages: one (or more) of every type, the source of the positive test
/// vectors in Vectors/vectors.json.
enum Samples {
    static let sender = NodeID(high: 0x0123_4567_89AB_CDEF, low: 0xFEDC_BA98_7654_3210)
    static let other = NodeID(high: 0x1111_2222_3333_4444, low: 0x5555_6666_7777_8888)
    static let key = AuthKey(Array(0..<32))
    /// Member tags (§3.4.1): a short set, and one of exactly 512 bytes (three entries).
    static let tags = try! MemberTags(["role": "db", "zone": "a"])
    static let largestTags = try! MemberTags([
        "a": String(repeating: "v", count: 255), "b": String(repeating: "w", count: 248), "c": "",
    ])

    static func header(sequence: UInt64 = 7, stamp: UInt64 = 42) -> Header {
        Header(sequence: sequence, stamp: stamp, sender: sender, incarnation: 3, replyPort: 40123, cluster: "starling", name: "worker-1")
    }

    static let entry = MemberEntry(id: other, incarnation: 2, status: .suspect, endpoint: Endpoint(address: 0x7F00_0001, port: 40500),
        name: "worker-2")
    static let digest = SetDigest(count: 2, hash: 0x0A0B_0C0D_0E0F_1011)
    /// An IPv6 member (issue 19 needs no further wire change): family 6, 16 address bytes.
    static let ipv6Entry = MemberEntry(id: NodeID(high: 0x2222_3333_4444_5555, low: 0x6666_7777_8888_9999), incarnation: 7, status: .dead,
        address: .ipv6(high: 0xFD00_0000_0000_0001, low: 0x0000_0000_0000_0002), port: 40501, name: "worker-7")

    static let payloads: [(String, Payload)] = [
        ("announce", .announce(Announcement(memberCount: 1, revoked: .empty))),
        ("announce-range", .announce(Announcement(versions: VersionRange(lowest: 2, highest: 3), memberCount: 30, revoked: digest))),
        ("goodbye", .goodbye),
        ("ping", .ping(Ping(probeID: 9, target: other, revoked: digest, piggyback: [entry]))),
        ("ping-empty", .ping(Ping(probeID: 9, target: other, revoked: .empty))),
        ("ack", .ack(Ping(probeID: 9, target: other, revoked: digest))),
        ("ack-piggyback", .ack(Ping(probeID: 0x8000_0009, target: other, revoked: digest, piggyback: [entry, ipv6Entry]))),
        ("ping-request", .pingRequest(Probe(probeID: 10, target: other))),
        ("nack", .nack(Probe(probeID: 10, target: other))),
        ("change", .change([entry])),
        ("change-ipv6", .change([ipv6Entry, MemberEntry(id: sender, incarnation: 4, status: .alive,
            endpoint: Endpoint(address: 0, port: 40123), name: "worker-1")])),
        ("members", .members(MembersPage(replyWanted: true, page: 0, pageCount: 1, entries: [entry]))),
        ("members-ipv6", .members(MembersPage(replyWanted: false, page: 0, pageCount: 1, entries: [MemberEntry(id: other, incarnation: 1,
            status: .alive, address: .ipv6(high: 0xFE80_0000_0000_0000, low: 0x0211_22FF_FE33_4455), port: 40500,
            name: "worker-6")]))),
        ("hello", .hello(Hello(requestID: 77, revoked: .empty))),
        ("hello-reply", .helloReply(HelloReply(requestID: 77, memberCount: 2, revoked: digest, members: [entry]))),
        ("page-request", .pageRequest(PageRequest(requestID: 78, bucketMask: .max, maxPages: 32, cursor: "", until: ""))),
        ("page-request-range", .pageRequest(PageRequest(requestID: 79, bucketMask: 0x5, maxPages: 1, cursor: "task-1", until: "task-9"))),
        ("page", .page(RevokedPage(requestID: 78, index: 0, last: true, entries: [
            RevokedEntry(id: "d9b1f8a2-5c1e-4f5e-9a51-3f0c2b7e8d10", revokedAtMillis: 1_795_000_000_000),
            RevokedEntry(id: "task-é", revokedAtMillis: 1_795_000_000_500),
        ]))),
        ("digest-request", .digestRequest(requestID: 80)),
        ("digest-reply", .digestReply(DigestReply(requestID: 80, buckets: (0..<64).map { SetDigest(count: UInt32($0 % 3), hash: UInt64($0) * 0x1_0001) }))),
        ("candidacy", .candidacy(Candidacy(term: 4, topic: "scheduler"))),
        ("leader", .leader(LeaderAnnouncement(term: 4, leader: sender, leaderStamp: 42, topic: "scheduler", leaderName: "worker-1"))),
        ("vote", .vote(Vote(term: 4, candidate: other, candidateStamp: 40, topic: "scheduler"))),
        ("control-request", .controlRequest(ControlRequest(requestID: 81, issuedMillis: 1_795_000_000_000, command: "revoke", target: "worker-*", args: ["a", "b"]))),
        ("control-reply", .controlReply(ControlReply(requestID: 81, status: .ok, memberCount: 3, page: 0, pageCount: 1,
            body: Array("{\"name\":\"worker-1\",\"stored\":2}".utf8)))),
        ("user-event", .userEvent(UserEvent(requestID: 82, sequence: 1, stamp: 41, name: "deploy", payload: "v1.2.3"))),
    ]

    /// The sample payload called `name` in ``payloads``.
    static func payload(_ name: String) -> Payload {
        guard let found = payloads.first(where: { $0.0 == name }) else { preconditionFailure("no sample \(name)") }
        return found.1
    }

    static func message(_ payload: Payload) -> Message { Message(header: header(), payload: payload) }

    static func encode(_ payload: Payload, keys: [AuthKey] = []) -> [UInt8] {
        try! Codec(keys: keys).encode(message(payload))
    }
}
