/// Cluster events, as logged, streamed by `watch` and delivered to embedders.
public enum PeerEvent: Sendable, Equatable {
    /// `tags`: those the datagram that made the member known carried (§3.4.1); empty when it
    /// was learned second-hand, its tags following as a ``tagsChanged(name:id:tags:)``.
    case joined(name: String, id: NodeID, endpoint: Endpoint, tags: MemberTags = .empty)
    case statusChanged(name: String, id: NodeID, from: MemberStatus, to: MemberStatus)
    case refuted(incarnation: UInt32)
    case replaced(name: String, old: NodeID, new: NodeID)
    /// A member's tags changed (this peer's own included), as §3.4.1 tells them.
    case tagsChanged(name: String, id: NodeID, tags: MemberTags)
    case reaped(name: String, id: NodeID)
    case duplicateName(name: String, ids: [NodeID])
    case searching
    case synced(nodes: Int, clock: UInt64, received: Int, complete: Bool)
    case alone
    case revoked(ids: [String], by: String)
    /// A user event delivered here (issue 18): once per (origin id, sequence).
    case userEvent(name: String, payload: String, origin: String, originID: NodeID, sequence: UInt32, stamp: UInt64)
    case leaderChanged(topic: String, leader: String?, leaderID: NodeID?, term: UInt64)
    case noQuorum(topic: String, term: UInt64, have: Int, need: Int)
    case reply(requestID: UInt32, from: String, id: NodeID, status: ControlStatus, body: String)
    case requestFinished(requestID: UInt32, reason: RequestEnd, replies: Int, expected: Int?)
    case dropped(reason: String, from: Endpoint)
    case stalled(millis: UInt64)
    /// A peer speaks another protocol version; said once per sender (Protocol.md §5).
    case otherVersion(version: UInt8, name: String?, from: Endpoint)

    /// The event's name: the `event` field of the event log and of `watch`.
    public var kind: String { rendering.name }
}

/// How an event is shown, the one table the log, the event log and `watch` all read.
public struct EventRendering: Sendable {
    public enum Severity: Sendable, Equatable { case debug, info, warning }

    public let name: String
    /// The fields after `time_ms`, `source` and `event`; nil for an event that is not a cluster
    /// event (neither written to the event log nor streamed by `watch`).
    public let fields: [(String, JSON)]?
    /// The sentence of the log line; nil for an event that is not logged.
    public let summary: String?
    public let severity: Severity
}

extension PeerEvent {
    /// This event's name, fields and log sentence.
    public var rendering: EventRendering {
        func row(_ name: String, _ fields: [(String, JSON)]?, _ severity: EventRendering.Severity, _ summary: String?) -> EventRendering {
            EventRendering(name: name, fields: fields, summary: summary, severity: severity)
        }
        func plural(_ count: Int, _ word: String) -> String { "\(count) \(word)\(count == 1 ? "" : "s")" }
        switch self {
        case .joined(let name, let id, let endpoint, let tags):
            return row("joined", [("name", .string(name)), ("id", .string(id.description)), ("address", .string(endpoint.description))]
                + (tags.isEmpty ? [] : [("tags", tags.json)]),
                .info, "member \(name) (\(id.short)) joined at \(endpoint)" + (tags.isEmpty ? "" : " with tags \(tags)"))
        case .statusChanged(let name, let id, let from, let to):
            return row(to.name, [("name", .string(name)), ("id", .string(id.description)), ("from", .string(from.name))],
                to == .dead ? .warning : .info, "member \(name) (\(id.short)) \(from.name) -> \(to.name)")
        case .refuted(let incarnation):
            return row("refuted", [("incarnation", .int(incarnation))], .warning, "refuted suspicion of this node (incarnation \(incarnation))")
        case .replaced(let name, let old, let new):
            return row("replaced", [("name", .string(name)), ("old", .string(old.description)), ("new", .string(new.description))],
                .info, "member \(name) restarted: \(old.short) replaced by \(new.short)")
        case .reaped(let name, let id):
            return row("reaped", nil, .debug, "member \(name) (\(id.short)) reaped")
        case .duplicateName(let name, let ids):
            return row("duplicate_name", [("name", .string(name))], .warning, "two nodes named \(name): \(ids.map(\.short).joined(separator: ", "))")
        case .searching:
            return row("searching", [], .info, "mingle: searching for neighbours")
        case .synced(let nodes, let clock, let received, let complete):
            return row("synced", [("nodes", .int(nodes)), ("clock", .int(clock)), ("received", .int(received)), ("complete", .bool(complete))],
                .info, "mingle: synced with \(plural(nodes, "node")) (clock \(clock), \(received) revoked ids received)\(complete ? "" : ", deadline reached")")
        case .alone:
            return row("alone", [], .info, "mingle: no neighbours answered; alone")
        case .revoked(let ids, let by):
            return row("revoked", [("ids", .array(ids.map { .string($0) })), ("by", .string(by))], .info, "revoked \(plural(ids.count, "id")) (by \(by))")
        case .userEvent(let name, let payload, let origin, let originID, let sequence, let stamp):
            // `name` is what a handler's `user:NAME` filter matches (EventHandler).
            return row("user", [("name", .string(name)), ("payload", .string(payload)), ("origin", .string(origin)),
                ("origin_id", .string(originID.description)), ("sequence", .int(sequence)), ("stamp", .int(stamp))],
                .info, "user event '\(name)' from \(origin) (stamp \(stamp), \(plural(payload.utf8.count, "byte")))")
        case .tagsChanged(let name, let id, let tags):
            return row("tags", [("name", .string(name)), ("id", .string(id.description)), ("tags", tags.json)],
                .info, "member \(name) (\(id.short)) tags: \(tags.isEmpty ? "none" : tags.description)")
        case .leaderChanged(let topic, let leader, _, let term):
            return row("leader", [("topic", .string(topic)), ("leader", leader.map { .string($0) } ?? .null), ("term", .int(term))],
                .info, "election '\(topic)' term \(term): leader \(leader ?? "none")")
        case .noQuorum(let topic, let term, let have, let need):
            return row("no_quorum", [("topic", .string(topic)), ("term", .int(term)), ("have", .int(have)), ("need", .int(need))],
                .warning, "election '\(topic)' term \(term): no quorum (\(have) of \(need) needed)")
        case .reply:
            return row("reply", nil, .debug, nil)
        case .requestFinished:
            return row("request_finished", nil, .debug, nil)
        case .dropped(let reason, let from):
            return row("dropped", nil, .debug, "dropped datagram from \(from): \(reason)")
        case .otherVersion(let version, let name, let from):
            return row("other_version", nil, .warning,
                "\(name.map { "peer \($0)" } ?? "a peer") at \(from) speaks protocol version \(version), this one \(Limits.version): its datagrams are dropped")
        case .stalled(let millis):
            return row("stalled", [("millis", .int(millis))], .warning, "event loop stalled for \(millis) ms; silence clocks moved on")
        }
    }
}

extension Peer {
    /// Events as the event log and `watch` show them; nil for the ones that are not cluster events.
    public static func eventJSON(_ event: PeerEvent, source: String, wallMillis: UInt64) -> JSON? {
        let rendering = event.rendering
        guard let fields = rendering.fields else { return nil }
        return .object([("time_ms", .int(wallMillis)), ("source", .string(source)), ("event", .string(rendering.name))] + fields)
    }
}
