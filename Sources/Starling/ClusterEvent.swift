import StarlingCore

/// Something that happened in the cluster, as this agent saw it (``Agent/events``).
public enum ClusterEvent: Sendable, Equatable {
    /// A member was heard of for the first time (or again after it was forgotten).
    case joined(name: String, id: NodeID, endpoint: Endpoint)
    /// A member stopped answering probes; it is dead unless it refutes in time.
    case suspect(name: String, id: NodeID)
    /// A suspected (or dead) member is alive after all.
    case alive(name: String, id: NodeID)
    /// A member was declared dead.
    case dead(name: String, id: NodeID)
    /// A member said goodbye.
    case left(name: String, id: NodeID)
    /// A member restarted under the same name with a new id.
    case restarted(name: String, old: NodeID, new: NodeID)
    /// Two live members share a name.
    case duplicateName(name: String, ids: [NodeID])
    /// A member's tags changed (this agent's own included): `tags` are the new ones, empty when
    /// it dropped them all.
    case tagsChanged(name: String, id: NodeID, tags: MemberTags)
    /// This agent was suspected and refuted it at `incarnation`.
    case refuted(incarnation: UInt32)
    /// Mingle started: this agent asks its neighbours for their clock and revoked ids.
    case searching
    /// Mingle finished: `complete` is false when its deadline cut it short.
    case synced(nodes: Int, clock: UInt64, received: Int, complete: Bool)
    /// Mingle found no neighbour; the agent keeps listening.
    case alone
    /// Ids were revoked (here or on another member), `by` names who revoked them.
    case revoked(ids: [String], by: String)
    /// The leader of `topic` changed; nil when the topic has none (it died, or no quorum).
    case leaderChanged(topic: String, leader: Leadership?)
    /// Quorum mode: an election could not decide.
    case noQuorum(topic: String, term: UInt64, have: Int, need: Int)
    /// A user event (``Agent/send(event:payload:timeout:)``, `starling event`) was delivered
    /// here: once per event, on every live agent, its origin included.
    case userEvent(UserEventDelivery)
    /// This agent's loop did not run for `duration` (a paused process, an overloaded machine).
    case stalled(Duration)
    /// A peer speaks another protocol version; said once per sender.
    case otherVersion(version: UInt8, name: String?, from: Endpoint)

    /// The cluster event a core event is, if it is one (replies, request ends, drops and
    /// forgetting are plumbing: counted in `stats`, not streamed).
    init?(_ event: PeerEvent) {
        switch event {
        case .joined(let name, let id, let endpoint, _): self = .joined(name: name, id: id, endpoint: endpoint)
        case .statusChanged(let name, let id, _, let to):
            switch to {
            case .alive: self = .alive(name: name, id: id)
            case .suspect: self = .suspect(name: name, id: id)
            case .dead: self = .dead(name: name, id: id)
            case .left: self = .left(name: name, id: id)
            }
        case .replaced(let name, let old, let new): self = .restarted(name: name, old: old, new: new)
        case .duplicateName(let name, let ids): self = .duplicateName(name: name, ids: ids)
        case .tagsChanged(let name, let id, let tags): self = .tagsChanged(name: name, id: id, tags: tags)
        case .refuted(let incarnation): self = .refuted(incarnation: incarnation)
        case .searching: self = .searching
        case .synced(let nodes, let clock, let received, let complete):
            self = .synced(nodes: nodes, clock: clock, received: received, complete: complete)
        case .alone: self = .alone
        case .revoked(let ids, let by): self = .revoked(ids: ids, by: by)
        case .leaderChanged(let topic, let leader, let leaderID, let term):
            self = .leaderChanged(topic: topic, leader: Leadership(topic: topic, name: leader, id: leaderID, term: term))
        case .noQuorum(let topic, let term, let have, let need): self = .noQuorum(topic: topic, term: term, have: have, need: need)
        case .userEvent(let name, let payload, let origin, let originID, let sequence, let stamp):
            self = .userEvent(UserEventDelivery(name: name, payload: payload, origin: origin, originID: originID, sequence: sequence, stamp: stamp))
        case .stalled(let millis): self = .stalled(.milliseconds(Int64(clamping: millis)))
        case .otherVersion(let version, let name, let from): self = .otherVersion(version: version, name: name, from: from)
        case .reply, .requestFinished, .dropped, .reaped: return nil
        }
    }
}

/// A user event as delivered (issue 18).
public struct UserEventDelivery: Sendable, Equatable, Hashable {
    /// 1 to 64 bytes; what a handler's `user:NAME` filter matches (as bytes).
    public var name: String
    /// 0 to 1,024 bytes of UTF-8.
    public var payload: String
    /// The node name of the agent that sent it.
    public var origin: String
    /// The origin's node id; (originID, sequence) identifies the event.
    public var originID: NodeID
    /// Per origin and boot, from 1.
    public var sequence: UInt32
    /// The origin's Lamport clock when it sent the event: orders events causally.
    public var stamp: UInt64

    /// A delivery with these fields.
    public init(name: String, payload: String, origin: String, originID: NodeID, sequence: UInt32, stamp: UInt64) {
        self.name = name
        self.payload = payload
        self.origin = origin
        self.originID = originID
        self.sequence = sequence
        self.stamp = stamp
    }
}

/// Who leads a topic, and since which election term.
public struct Leadership: Sendable, Equatable, Hashable {
    /// The election topic.
    public var topic: String
    /// The leader's node name.
    public var leader: String
    /// The leader's node id.
    public var leaderID: NodeID
    /// Terms only grow; a later term's leader replaces an earlier one's.
    public var term: UInt64

    /// A leadership as an election decided it.
    public init(topic: String, leader: String, leaderID: NodeID, term: UInt64) {
        self.topic = topic
        self.leader = leader
        self.leaderID = leaderID
        self.term = term
    }

    /// nil unless both the name and the id are known.
    init?(topic: String, name: String?, id: NodeID?, term: UInt64) {
        guard let name, let id else { return nil }
        self.init(topic: topic, leader: name, leaderID: id, term: term)
    }
}

/// One member of this agent's view.
public struct ClusterMember: Sendable, Equatable, Hashable {
    /// The member's node name.
    public var name: String
    /// The member's node id.
    public var id: NodeID
    /// Where its unicast socket is.
    public var endpoint: Endpoint
    /// alive, suspect, dead or left, as this agent sees it.
    public var status: MemberStatus
    /// Raised by the member itself to refute a suspicion.
    public var incarnation: UInt32
    /// The highest Lamport stamp seen on its datagrams.
    public var clock: UInt64
    /// How long ago a datagram came from the member itself.
    public var lastHeard: Duration
    /// What the member says about itself (empty when it has no tags, or none reached this agent yet).
    public var tags: MemberTags

    /// Alive or suspect: still counted as a member.
    public var isLive: Bool { status == .alive || status == .suspect }

    init(_ member: Member, now: UInt64, tags: MemberTags) {
        self.tags = tags
        name = member.name
        id = member.id
        endpoint = member.endpoint
        status = member.status
        incarnation = member.incarnation
        clock = member.clock
        lastHeard = .nanos(now &- min(now, member.lastHeard))
    }
}
