import StarlingCore
import StarlingPOSIX
import Synchronization

/// One agent's answer to a control request.
public struct Reply: Sendable, Equatable {
    public var name: String
    public var id: NodeID
    public var status: ControlStatus
    /// The JSON body as text.
    public var body: String

    public init(name: String, id: NodeID, status: ControlStatus, body: String) {
        self.name = name
        self.id = id
        self.status = status
        self.body = body
    }

    /// The body parsed; `.null` when it is not JSON.
    public var json: JSON { (try? JSON.parse(body)) ?? .null }
}

/// All replies to one request and why collection stopped.
public struct RequestResult: Sendable {
    public var replies: [Reply]
    public var reason: RequestEnd
    public var expected: Int?
    /// Replies that came only in part (pages still missing when collection stopped); filled by
    /// ``ControlClient``, so that "no agent answered" is said only when nothing came.
    public var incomplete: [RequestProgress.Partial] = []

    /// Adds the outcome of a further request of the same operation.
    mutating func append(_ next: RequestResult) {
        replies += next.replies
        if reason == .allReplied { reason = next.reason }
        expected = [expected, next.expected].compactMap { $0 }.max()
    }
}

/// Collects the replies of one request for an async caller.
final class RequestWaiter: Sendable {
    private let state = Mutex<(replies: [Reply], continuation: CheckedContinuation<RequestResult, Never>?)>(([], nil))

    init(_ continuation: CheckedContinuation<RequestResult, Never>) {
        state.withLock { $0.continuation = continuation }
    }

    func add(_ reply: Reply) { state.withLock { $0.replies.append(reply) } }

    func finish(_ reason: RequestEnd, expected: Int?) {
        let (replies, continuation) = state.withLock { value in
            let taken = (value.replies, value.continuation)
            value.continuation = nil
            return taken
        }
        continuation?.resume(returning: RequestResult(replies: replies, reason: reason, expected: expected))
    }
}

extension Agent {
    /// Calls `handler` for every event from now on — whether the loop emitted it or an API call
    /// such as ``revoke(_:options:)`` did — in order, one at a time, outside the loop lock, on
    /// the loop's thread or on the thread of the API call that ran the core. A handler may call
    /// the agent's API.
    public func onEvent(_ handler: @escaping @Sendable (PeerEvent) -> Void) {
        loop.withLock { $0.handlers.append(handler) }
    }

    /// A copy of this agent's membership view (itself not included).
    public func members() -> [Member] {
        loop.withLock { Array($0.peer.members.values) }.sorted { ($0.name, $0.id) < ($1.name, $1.id) }
    }

    public var clock: UInt64 { loop.withLock { $0.peer.clock.value } }
    public var incarnation: UInt32 { loop.withLock { $0.peer.incarnation } }
    public var revokedCount: Int { loop.withLock { $0.peer.revoked.count } }
    public func isRevoked(_ id: String) -> Bool { loop.withLock { $0.peer.revoked.contains(id) } }
    public var isSynced: Bool { loop.withLock { $0.peer.isSynced } }
    public var counters: Counters { loop.withLock { $0.peer.counters } }

    /// The leader this agent knows for `topic`.
    public func leader(of topic: String) -> (name: String?, id: NodeID?, term: UInt64) {
        loop.withLock { $0.peer.leader(of: topic) }
    }

    /// True while this agent leads `topic`.
    public func isLeader(of topic: String) -> Bool { leader(of: topic).id == id }

    /// Changes fault injection while running (tests and benchmarks).
    public func setFaults(_ settings: FaultSettings) {
        loop.withLock { $0.faults.settings = settings }
    }

    /// Starts an election for `topic`; watch `.leaderChanged` events or poll ``leader(of:)``.
    public func elect(_ topic: String) {
        mutate { state, now in state.peer.elect(topic, now: now) }
    }

    /// Revokes ids here and on every live member; returns when all have acknowledged (or timed out).
    /// More ids than fit one request go out in several requests, one after another; the result
    /// then holds every reply (one per agent per request) and the first ending that was not
    /// "all replied". While this agent cannot keep revokes on disk (see `durable` in `stats`), the
    /// ids are still held in memory and sent to the others, and the result also holds a reply
    /// from this agent itself with status `error` saying why.
    public func revoke(_ ids: [String], options: RequestOptions = RequestOptions()) async -> RequestResult {
        let batches = loop.withLock { $0.peer.requestBatches(ids, command: "revoke") }
        var result = RequestResult(replies: [], reason: .allReplied, expected: nil)
        for batch in batches {
            var next = await collect { state, now in state.peer.revoke(batch, options: options, now: now) }
            if let error = loop.withLock({ $0.peer.durabilityError }) {
                let body = JSON.object([("name", .string(configuration.name)), ("error", .string("not kept on disk: \(error)"))])
                next.replies.append(Reply(name: configuration.name, id: id, status: .error, body: body.serialized()))
            }
            result.append(next)
        }
        return result
    }

    /// Sends a control command to the cluster (or the agents matching `target`) and collects replies.
    public func request(_ command: String, args: [String] = [], target: String = "", options: RequestOptions? = nil) async -> RequestResult {
        await collect { state, now in
            var options = options ?? RequestOptions()
            if options.expected == nil {
                options.expected = state.peer.members.values.filter { $0.isLive && Glob.matchesTarget(target, $0.name) }.count
            }
            return state.peer.request(command, args: args, target: target, options: options, now: now)
        }
    }

    private func collect(_ body: @escaping @Sendable (inout LoopState, Now) -> (UInt32, [Action])) async -> RequestResult {
        await withCheckedContinuation { continuation in
            let waiter = RequestWaiter(continuation)
            let running = withCore { state, now -> Bool in
                guard state.running else { return false }
                let (id, actions) = body(&state, now)
                state.waiters[id] = waiter
                perform(actions, state: &state, now: now)
                return true
            }
            if !running { waiter.finish(.deadline, expected: nil) }
            wakePipe.wake()
        }
    }

    private func mutate(_ body: (inout LoopState, Now) -> [Action]) {
        withCore { state, now in perform(body(&state, now), state: &state, now: now) }
        wakePipe.wake()
    }
}

extension Reply {
    /// The reply a `.reply` event carries and the request it answers; nil for any other event.
    static func carried(by event: PeerEvent) -> (request: UInt32, reply: Reply)? {
        guard case .reply(let requestID, let from, let id, let status, let body) = event else { return nil }
        return (requestID, Reply(name: from, id: id, status: status, body: body))
    }
}
