/// The payload types of Protocol.md §3, one struct per message body, and the values they carry.

/// Membership status as it travels in gossip (Protocol.md §3.1).
public enum MemberStatus: UInt8, Sendable, Comparable, CaseIterable {
    case alive = 0
    case suspect = 1
    case dead = 2
    case left = 3

    public var name: String {
        switch self {
        case .alive: "alive"
        case .suspect: "suspect"
        case .dead: "dead"
        case .left: "left"
        }
    }

    public static func < (lhs: MemberStatus, rhs: MemberStatus) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A member's address as an entry carries it (Protocol.md §3.1): IPv4 or IPv6, so that
/// IPv6 clusters (issue 19) need no further wire change. All zero means "the source address of
/// the datagram that carried the entry".
public enum EntryAddress: Hashable, Sendable {
    case ipv4(UInt32)
    case ipv6(high: UInt64, low: UInt64)

    /// The `family` byte on the wire.
    public var family: UInt8 {
        switch self {
        case .ipv4: 4
        case .ipv6: 6
        }
    }

    /// Address bytes on the wire after the family byte.
    var byteCount: Int {
        switch self {
        case .ipv4: 4
        case .ipv6: 16
        }
    }
}

/// One member as gossiped (Protocol.md §3.1, MEMBER ENTRY).
public struct MemberEntry: Equatable, Sendable {
    public var id: NodeID
    public var incarnation: UInt32
    public var status: MemberStatus
    public var address: EntryAddress
    public var port: UInt16
    public var name: String

    public init(id: NodeID, incarnation: UInt32, status: MemberStatus, address: EntryAddress, port: UInt16, name: String) {
        self.id = id
        self.incarnation = incarnation
        self.status = status
        self.address = address
        self.port = port
        self.name = name
    }

    /// An entry for a member at `endpoint`, of its family.
    public init(id: NodeID, incarnation: UInt32, status: MemberStatus, endpoint: Endpoint, name: String) {
        let address: EntryAddress = endpoint.ip.ipv4.map { .ipv4($0) } ?? .ipv6(high: endpoint.ip.high, low: endpoint.ip.low)
        self.init(id: id, incarnation: incarnation, status: status, address: address, port: endpoint.port, name: name)
    }

    /// The member's endpoint, an all-zero address taken as `source`; nil when the entry is not
    /// of the source's family (one cluster is one family, Protocol.md §2.5), an IPv4-mapped
    /// address sent as family 6 included.
    public func endpoint(source: IPAddress) -> Endpoint? {
        switch address {
        case .ipv4(let value):
            guard source.family == .ipv4 else { return nil }
            return Endpoint(ip: value == 0 ? source : IPAddress(ipv4: value), port: port)
        case .ipv6(let high, let low):
            let ip = IPAddress(high: high, low: low)
            guard source.family == .ipv6, ip.family == .ipv6 else { return nil }
            return Endpoint(ip: ip.isUnspecified ? source : ip, port: port)
        }
    }

    /// Bytes on the wire: id 16, incarnation 4, status 1, family 1, address 4 or 16, port 2,
    /// name length 1, then the name (Protocol.md §3.1).
    var encodedSize: Int { Self.fixedSize + address.byteCount + name.utf8.count }
    static let fixedSize = 25
}

/// Count and order-independent hash of a revoked set (Protocol.md §3.2).
public struct SetDigest: Equatable, Sendable {
    public var count: UInt32
    public var hash: UInt64

    public init(count: UInt32, hash: UInt64) {
        self.count = count
        self.hash = hash
    }

    public static let empty = SetDigest(count: 0, hash: 0)
}

/// ANNOUNCE payload: a peer arriving (Protocol.md §3.1).
public struct Announcement: Equatable, Sendable {
    /// The versions the sender speaks.
    public var versions: VersionRange
    /// Members the sender holds live, itself included.
    public var memberCount: UInt16
    public var revoked: SetDigest

    public init(versions: VersionRange = .spoken, memberCount: UInt16, revoked: SetDigest) {
        self.versions = versions
        self.memberCount = memberCount
        self.revoked = revoked
    }
}

/// PING and ACK payload (Protocol.md §3.1): the probe, the sender's revoked-set digest, and
/// membership changes piggybacked to repair the loss of their multicast.
public struct Ping: Equatable, Sendable {
    public var probeID: UInt32
    /// The member probed: the receiver of a PING, the sender of a direct ACK.
    public var target: NodeID
    public var revoked: SetDigest
    public var piggyback: [MemberEntry]

    public init(probeID: UInt32, target: NodeID, revoked: SetDigest, piggyback: [MemberEntry] = []) {
        self.probeID = probeID
        self.target = target
        self.revoked = revoked
        self.piggyback = piggyback
    }

    /// Bytes of the payload before the piggybacked entries: probe id, target, digest, count.
    static let fixedSize = 4 + 16 + 12 + 1
}

/// The protocol versions a peer speaks, lowest and highest (Protocol.md §3.1), carried
/// by the messages that open an acquaintance: ANNOUNCE, HELLO and HELLO_REPLY.
public struct VersionRange: Equatable, Sendable {
    public var lowest: UInt8
    public var highest: UInt8

    public init(lowest: UInt8, highest: UInt8) {
        self.lowest = lowest
        self.highest = highest
    }

    /// What this implementation speaks.
    public static let spoken = VersionRange(lowest: Limits.version, highest: Limits.version)
}

/// PING_REQ and NACK payload: a probe and its target (Protocol.md §3.1).
public struct Probe: Equatable, Sendable {
    public var probeID: UInt32
    public var target: NodeID

    public init(probeID: UInt32, target: NodeID) {
        self.probeID = probeID
        self.target = target
    }
}

/// MEMBERS payload: one page of a full membership view (push-pull anti-entropy).
public struct MembersPage: Equatable, Sendable {
    /// Set when the receiver should answer with its own view.
    public var replyWanted: Bool
    public var page: UInt8
    public var pageCount: UInt8
    public var entries: [MemberEntry]

    public init(replyWanted: Bool, page: UInt8, pageCount: UInt8, entries: [MemberEntry]) {
        self.replyWanted = replyWanted
        self.page = page
        self.pageCount = pageCount
        self.entries = entries
    }
}

/// HELLO payload (mingle, Protocol.md §3.2).
public struct Hello: Equatable, Sendable {
    public var versions: VersionRange
    public var requestID: UInt32
    public var revoked: SetDigest

    public init(versions: VersionRange = .spoken, requestID: UInt32, revoked: SetDigest) {
        self.versions = versions
        self.requestID = requestID
        self.revoked = revoked
    }
}

/// HELLO_REPLY payload.
public struct HelloReply: Equatable, Sendable {
    public var versions: VersionRange
    public var requestID: UInt32
    public var memberCount: UInt16
    public var revoked: SetDigest
    public var members: [MemberEntry]

    public init(versions: VersionRange = .spoken, requestID: UInt32, memberCount: UInt16, revoked: SetDigest, members: [MemberEntry]) {
        self.versions = versions
        self.requestID = requestID
        self.memberCount = memberCount
        self.revoked = revoked
        self.members = members
    }
}

/// PAGE_REQUEST payload: ids strictly after `cursor` and strictly before `until` (byte order;
/// an empty `until` means no upper bound), in the buckets of `bucketMask`.
public struct PageRequest: Equatable, Sendable {
    public var requestID: UInt32
    public var bucketMask: UInt64
    /// How many pages the server may send back to back for this request (1–255).
    public var maxPages: UInt8
    public var cursor: String
    public var until: String

    public init(requestID: UInt32, bucketMask: UInt64, maxPages: UInt8, cursor: String, until: String = "") {
        self.requestID = requestID
        self.bucketMask = bucketMask
        self.maxPages = maxPages
        self.cursor = cursor
        self.until = until
    }
}

/// One revoked id with its wall-clock revoke time (Unix epoch milliseconds).
public struct RevokedEntry: Equatable, Sendable {
    public var id: String
    public var revokedAtMillis: UInt64

    public init(id: String, revokedAtMillis: UInt64) {
        self.id = id
        self.revokedAtMillis = revokedAtMillis
    }
}

/// PAGE payload.
public struct RevokedPage: Equatable, Sendable {
    public var requestID: UInt32
    /// Position of this page in the burst answering `requestID` (0-based).
    public var index: UInt8
    /// Set on the page that holds the set's final entry.
    public var last: Bool
    public var entries: [RevokedEntry]

    public init(requestID: UInt32, index: UInt8, last: Bool, entries: [RevokedEntry]) {
        self.requestID = requestID
        self.index = index
        self.last = last
        self.entries = entries
    }
}

/// DIGEST_REPLY payload: the per-bucket digests of a revoked set.
public struct DigestReply: Equatable, Sendable {
    public var requestID: UInt32
    public var buckets: [SetDigest]

    public init(requestID: UInt32, buckets: [SetDigest]) {
        self.requestID = requestID
        self.buckets = buckets
    }
}

/// CANDIDACY payload; the header stamp is the candidacy stamp (Protocol.md §4.3).
public struct Candidacy: Equatable, Sendable {
    public var term: UInt64
    public var topic: String

    public init(term: UInt64, topic: String) {
        self.term = term
        self.topic = topic
    }
}

/// LEADER payload.
public struct LeaderAnnouncement: Equatable, Sendable {
    public var term: UInt64
    public var leader: NodeID
    public var leaderStamp: UInt64
    public var topic: String
    public var leaderName: String

    public init(term: UInt64, leader: NodeID, leaderStamp: UInt64, topic: String, leaderName: String) {
        self.term = term
        self.leader = leader
        self.leaderStamp = leaderStamp
        self.topic = topic
        self.leaderName = leaderName
    }
}

/// VOTE payload (quorum mode).
public struct Vote: Equatable, Sendable {
    public var term: UInt64
    public var candidate: NodeID
    public var candidateStamp: UInt64
    public var topic: String

    public init(term: UInt64, candidate: NodeID, candidateStamp: UInt64, topic: String) {
        self.term = term
        self.candidate = candidate
        self.candidateStamp = candidateStamp
        self.topic = topic
    }
}

/// CONTROL_REQUEST payload.
public struct ControlRequest: Equatable, Sendable {
    public var requestID: UInt32
    /// The requester's wall clock when it issued the request (Unix epoch milliseconds). In a
    /// keyed cluster a command with effects is refused outside the request window around the
    /// agent's clock, so a captured request cannot be replayed later (Protocol.md §7.3).
    /// 0 means unknown: such a request only runs commands without effects in a keyed cluster.
    public var issuedMillis: UInt64
    public var command: String
    /// Glob over node names ("" means every agent).
    public var target: String
    public var args: [String]

    public init(requestID: UInt32, issuedMillis: UInt64 = 0, command: String, target: String, args: [String]) {
        self.requestID = requestID
        self.issuedMillis = issuedMillis
        self.command = command
        self.target = target
        self.args = args
    }
}

/// CONTROL_REPLY status codes.
public enum ControlStatus: UInt8, Sendable {
    case ok = 0
    case error = 1
    case refused = 2
    case unknownCommand = 3
}

/// CONTROL_REPLY payload: one page of a UTF-8 JSON body.
public struct ControlReply: Equatable, Sendable {
    public var requestID: UInt32
    public var status: ControlStatus
    /// How many members (alive or suspect, itself included) the responder knows: lets a requester
    /// that has no view of its own know how many replies to expect.
    public var memberCount: UInt16
    public var page: UInt16
    public var pageCount: UInt16
    public var body: [UInt8]

    public init(
        requestID: UInt32, status: ControlStatus, memberCount: UInt16, page: UInt16, pageCount: UInt16, body: [UInt8]
    ) {
        self.requestID = requestID
        self.status = status
        self.memberCount = memberCount
        self.page = page
        self.pageCount = pageCount
        self.body = body
    }
}
