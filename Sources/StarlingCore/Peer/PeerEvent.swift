/// Cluster events, as logged, streamed by `watch` and delivered to embedders.
public enum PeerEvent: Sendable, Equatable {
    case joined(name: String, id: NodeID, endpoint: Endpoint)
    case statusChanged(name: String, id: NodeID, from: MemberStatus, to: MemberStatus)
    case refuted(incarnation: UInt32)
    case replaced(name: String, old: NodeID, new: NodeID)
    case reaped(name: String, id: NodeID)
    case duplicateName(name: String, ids: [NodeID])
    case searching
    case synced(nodes: Int, clock: UInt64, received: Int, complete: Bool)
    case alone
    case revoked(ids: [String], by: String)
    case leaderChanged(topic: String, leader: String?, leaderID: NodeID?, term: UInt64)
    case noQuorum(topic: String, term: UInt64, have: Int, need: Int)
    case reply(requestID: UInt32, from: String, id: NodeID, status: ControlStatus, body: String)
    case requestFinished(requestID: UInt32, reason: RequestEnd, replies: Int, expected: Int?)
    case dropped(reason: String, from: Endpoint)
    case stalled(millis: UInt64)

    /// Short kind name used by logs and `watch`.
    public var kind: String {
        switch self {
        case .joined: "joined"
        case .statusChanged(_, _, _, let to): to == .alive ? "alive" : to.name
        case .refuted: "refuted"
        case .replaced: "replaced"
        case .reaped: "reaped"
        case .duplicateName: "duplicate_name"
        case .searching: "searching"
        case .synced: "synced"
        case .alone: "alone"
        case .revoked: "revoked"
        case .leaderChanged: "leader"
        case .noQuorum: "no_quorum"
        case .reply: "reply"
        case .requestFinished: "request_finished"
        case .dropped: "dropped"
        case .stalled: "stalled"
        }
    }
}
