import StarlingCore
import StarlingPOSIX
import Synchronization

extension Agent {
    /// Sends user event `event` with `payload` to every live agent of the cluster, this one
    /// included (issue 18): each delivers it once, as a ``ClusterEvent/userEvent(_:)`` in
    /// ``events``, a `user` event in `watch` and to the `--on-event` handlers that match. The
    /// event is multicast once and re-sent by unicast to the members that have not
    /// acknowledged, within milliseconds at first (Protocol.md §6.7), so a lost datagram costs a
    /// round trip or two. Returns when every live member acknowledged, or at `timeout` (at most
    /// 30 s) with the silent ones in ``UserEventResult/missing``.
    ///
    /// Throws ``AgentError/invalidArgument(_:)`` for a name that is empty, over 64 bytes or holds
    /// a control character or a comma, or a payload over 1,024 bytes (nothing is sent then).
    public func send(event: String, payload: String = "", timeout: Duration = .seconds(5)) async throws(AgentError) -> UserEventResult {
        guard UserEvent.isValidName(event) else {
            throw .invalidArgument("an event name is 1 to 64 bytes without control characters or commas ('\(Escape.display(event.prefix(40)))' has \(event.utf8.count) bytes)")
        }
        guard Limits.userEventPayloadBytes.contains(payload.utf8.count) else {
            throw .invalidArgument("an event's payload is at most \(Limits.userEventPayloadBytes.upperBound) bytes (it has \(payload.utf8.count))")
        }
        try await waitUntilRunning()
        let expected = liveMemberIDs()
        let options = RequestOptions(deadline: max(1, min(timeout.nanos, .millis(30_000))))
        let sent = Mutex<UserEvent?>(nil)
        let result = try await collect { state, now in
            guard let (event, id, actions) = state.peer.sendUserEvent(event, payload: payload, options: options, now: now) else {
                // Only 2^32 − 1 events per boot: nothing was sent; end the wait at once.
                return (0, [.emit(.requestFinished(requestID: 0, reason: .allReplied, replies: 0, expected: 0))])
            }
            sent.withLock { $0 = event }
            return (id, actions)
        }
        guard let sent = sent.withLock({ $0 }) else { throw .invalidArgument("this agent has sent all the events one boot may send; restart it") }
        return UserEventResult(event: sent, replies: result.replies, expected: expected)
    }
}

/// What ``Agent/send(event:payload:timeout:)`` achieved.
public struct UserEventResult: Sendable, Equatable {
    /// The event's name.
    public var name: String
    /// Its sequence at this agent (the origin), from 1 per boot.
    public var sequence: UInt32
    /// This agent's Lamport clock for the event.
    public var stamp: UInt64
    /// Members that acknowledged: they delivered the event.
    public var acknowledged: [RevokeResult.Acknowledgement]
    /// Live members that had not acknowledged when collection stopped (they may still get it
    /// from a later re-send only while this call waits).
    public var missing: [NodeID]

    /// Every live member acknowledged.
    public var isComplete: Bool { missing.isEmpty }

    init(event: UserEvent, replies: [Reply], expected: Set<NodeID>) {
        name = event.name
        sequence = event.sequence
        stamp = event.stamp
        var latest: [NodeID: Reply] = [:]
        for reply in replies where reply.status == .ok { latest[reply.id] = reply }
        acknowledged = latest.values.map { RevokeResult.Acknowledgement(name: $0.name, id: $0.id, latency: $0.latency) }.sorted { $0.id < $1.id }
        missing = expected.subtracting(latest.keys).sorted()
    }
}
