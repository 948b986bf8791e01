import StarlingCore

/// One agent's answer to a control request.
public struct Reply: Sendable, Equatable {
    /// The answering agent's node name.
    public var name: String
    /// The answering agent's node id.
    public var id: NodeID
    /// ok, error, refused or unknown command.
    public var status: ControlStatus
    /// The JSON body as text.
    public var body: String
    /// From sending the request to this reply's last page.
    public var latency: Duration = .zero

    /// A reply as it came (tests build them too).
    public init(name: String, id: NodeID, status: ControlStatus, body: String) {
        self.name = name
        self.id = id
        self.status = status
        self.body = body
    }

    /// The body parsed; `.null` when it is not JSON.
    public var json: JSON { (try? JSON.parse(body)) ?? .null }

    /// The body's top-level field `key` as text (strings bare, other values as JSON); nil when
    /// the body is not a JSON object or has no such field.
    public func field(_ key: String) -> String? { json[key]?.plain }

    /// The reply a `.reply` event carries and the request it answers; nil for any other event.
    static func carried(by event: PeerEvent) -> (request: UInt32, reply: Reply)? {
        guard case .reply(let requestID, let from, let id, let status, let body) = event else { return nil }
        return (requestID, Reply(name: from, id: id, status: status, body: body))
    }
}

/// All replies to one request and why collection stopped.
public struct RequestResult: Sendable {
    /// In the order they came.
    public var replies: [Reply]
    /// Why collection stopped.
    public var reason: RequestEnd
    /// Replies expected when the request went out; nil when unknown.
    public var expected: Int?
    /// Replies that came only in part (pages still missing when collection stopped); filled by
    /// ``ControlClient``, so that "no agent answered" is said only when nothing came.
    package var incomplete: [RequestProgress.Partial] = []

    /// Adds the outcome of a further request of the same operation.
    package mutating func append(_ next: RequestResult) {
        replies += next.replies
        if reason == .allReplied { reason = next.reason }
        expected = [expected, next.expected].compactMap { $0 }.max()
    }
}

/// What a revoke reached.
public struct RevokeResult: Sendable, Equatable {
    /// The ids revoked (kept here whatever the others answered).
    public var ids: [String]
    /// Members that acknowledged: they hold the ids.
    public var acknowledged: [Acknowledgement]
    /// Live members that had not acknowledged when collection stopped.
    public var missing: [NodeID]
    /// Members that answered with an error (their `error` field), e.g. one that cannot keep
    /// revokes on disk; they hold the ids in memory.
    public var failed: [Failure]
    /// Why this agent cannot keep the ids on disk; nil when it can (or keeps nothing on disk).
    public var notDurable: String?

    /// One member's acknowledgement.
    public struct Acknowledgement: Sendable, Equatable {
        /// Its node name.
        public var name: String
        /// Its node id.
        public var id: NodeID
        /// From sending the revoke to its acknowledgement.
        public var latency: Duration
    }

    /// One member's refusal or error.
    public struct Failure: Sendable, Equatable {
        /// Its node name.
        public var name: String
        /// Its node id.
        public var id: NodeID
        /// Its error, as it worded it.
        public var message: String
    }

    /// Every live member acknowledged and this agent keeps the ids on disk (or keeps nothing).
    public var isComplete: Bool { missing.isEmpty && failed.isEmpty && notDurable == nil }

    /// `replies` to `batches` requests (one per batch of ids), from `expected` live members.
    init(ids: [String], batches: Int, replies: [Reply], expected: Set<NodeID>, notDurable: String?) {
        self.ids = ids
        self.notDurable = notDurable
        // Several batches: a member is acknowledged only when it acknowledged every batch.
        var okCount: [NodeID: Int] = [:]
        var failures: [NodeID: Failure] = [:]
        var latest: [NodeID: Reply] = [:]
        for reply in replies {
            if reply.status == .ok {
                okCount[reply.id, default: 0] += 1
                if (latest[reply.id]?.latency ?? .zero) <= reply.latency { latest[reply.id] = reply }
            } else {
                failures[reply.id] = Failure(name: reply.name, id: reply.id, message: reply.field("error") ?? "\(reply.status)")
            }
        }
        acknowledged = latest.values.filter { failures[$0.id] == nil && okCount[$0.id, default: 0] >= batches }
            .map { Acknowledgement(name: $0.name, id: $0.id, latency: $0.latency) }
            .sorted { $0.id < $1.id }
        failed = failures.values.sorted { $0.id < $1.id }
        let answered = Set(acknowledged.map(\.id)).union(failures.keys)
        missing = expected.subtracting(answered).sorted()
    }
}

/// One agent that answered a ping.
public struct PingReply: Sendable, Equatable {
    /// The answering agent's node name.
    public var name: String
    /// The answering agent's node id.
    public var id: NodeID
    /// From sending the ping to this answer.
    public var roundTrip: Duration
}

/// One agent's `stats` reply, typed. Numbers from the network are clamped to their type's
/// range (a negative or oversized count is not trusted); a field the agent did not send is 0.
public struct AgentStats: Sendable {
    /// The answering agent's node name.
    public var name: String
    /// Its node id.
    public var id: NodeID
    /// Starling's software version.
    public var version: String
    /// The cluster name it runs in.
    public var cluster: String
    /// Since its loop started.
    public var uptime: Duration
    /// Its Lamport clock.
    public var clock: UInt64
    /// Its incarnation (raised by each refutation).
    public var incarnation: UInt32
    /// Members by status, the answering agent included among the alive.
    public var alive: Int
    /// Members it suspects.
    public var suspect: Int
    /// Members it holds dead (until reaped).
    public var dead: Int
    /// Members that said goodbye (until reaped).
    public var left: Int
    /// Revoked ids it holds.
    public var revoked: Int
    /// Topics it holds and their leader's name (nil for none), in the order it sent them.
    public var leaders: [(topic: String, leader: String?)]
    /// Datagrams received (all, dropped ones too).
    public var datagramsIn: UInt64
    /// Datagrams sent.
    public var datagramsOut: UInt64
    /// Bytes received.
    public var bytesIn: UInt64
    /// Bytes sent.
    public var bytesOut: UInt64
    /// Dropped datagrams by reason (Protocol.md lists them).
    public var drops: [String: UInt64]
    /// It runs with cluster keys.
    public var authenticated: Bool
    /// Its mingle finished.
    public var synced: Bool
    /// Revokes acknowledged by it survive its restart.
    public var durable: Bool
    /// Its resident memory.
    public var residentBytes: UInt64

    /// `name` and `id` come from the reply's authenticated header, not from its body: a
    /// responder cannot speak for another agent.
    init(json: JSON, name: String, id: NodeID) {
        func number<T: FixedWidthInteger>(_ value: JSON?) -> T {
            guard let value = value?.numberValue, value.isFinite, value > 0 else { return 0 }
            return value >= Double(T.max) ? T.max : T(value)
        }
        self.name = name
        self.id = id
        version = json["version"]?.stringValue ?? ""
        cluster = json["cluster"]?.stringValue ?? ""
        uptime = .milliseconds(number(json["uptime_ms"]) as Int64)
        clock = number(json["clock"])
        incarnation = number(json["incarnation"])
        alive = number(json["members"]?["alive"])
        suspect = number(json["members"]?["suspect"])
        dead = number(json["members"]?["dead"])
        left = number(json["members"]?["left"])
        revoked = number(json["revoked"])
        if case .object(let pairs) = json["leaders"] ?? .null {
            leaders = pairs.map { (topic: $0.0, leader: $0.1.stringValue) }
        } else {
            leaders = []
        }
        datagramsIn = number(json["datagrams_in"])
        datagramsOut = number(json["datagrams_out"])
        bytesIn = number(json["bytes_in"])
        bytesOut = number(json["bytes_out"])
        var drops: [String: UInt64] = [:]
        if case .object(let pairs) = json["drops"] ?? .null {
            for (reason, count) in pairs { drops[reason] = number(count) }
        }
        self.drops = drops
        authenticated = json["authenticated"]?.boolValue ?? false
        synced = json["synced"]?.boolValue ?? false
        durable = json["durable"]?.boolValue ?? false
        residentBytes = number(json["resident_bytes"])
    }
}
