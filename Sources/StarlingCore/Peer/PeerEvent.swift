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

extension Peer {
    /// Events as `watch` shows them; nil for the ones that are not cluster events.
    public static func eventJSON(_ event: PeerEvent, source: String, wallMillis: UInt64) -> JSON? {
        var fields: [(String, JSON)] = [("time_ms", .int(wallMillis)), ("source", .string(source)), ("event", .string(event.kind))]
        switch event {
        case .joined(let name, let id, let endpoint):
            fields += [("name", .string(name)), ("id", .string(id.description)), ("address", .string(endpoint.description))]
        case .statusChanged(let name, let id, let from, _):
            fields += [("name", .string(name)), ("id", .string(id.description)), ("from", .string(from.name))]
        case .refuted(let incarnation): fields += [("incarnation", .int(incarnation))]
        case .replaced(let name, let old, let new):
            fields += [("name", .string(name)), ("old", .string(old.description)), ("new", .string(new.description))]
        case .synced(let nodes, let clock, let received, let complete):
            fields += [("nodes", .int(nodes)), ("clock", .int(clock)), ("received", .int(received)), ("complete", .bool(complete))]
        case .alone: break
        case .revoked(let ids, let by): fields += [("ids", .array(ids.map { .string($0) })), ("by", .string(by))]
        case .leaderChanged(let topic, let leader, _, let term):
            fields += [("topic", .string(topic)), ("leader", leader.map { .string($0) } ?? .null), ("term", .int(term))]
        case .noQuorum(let topic, let term, let have, let need):
            fields += [("topic", .string(topic)), ("term", .int(term)), ("have", .int(have)), ("need", .int(need))]
        case .duplicateName(let name, _): fields += [("name", .string(name))]
        case .stalled(let millis): fields += [("millis", .int(millis))]
        case .searching: break
        case .reaped, .reply, .requestFinished, .dropped: return nil
        }
        return .object(fields)
    }
}
