import StarlingCore
import StarlingPOSIX
import Synchronization

extension Agent {
    // MARK: Events

    /// Every cluster event from the moment this property is read until the agent stops, in the
    /// order this agent saw them. Each read is a new subscription: any number of tasks may
    /// listen, each to its own. A subscriber that falls more than
    /// ``Configuration/eventBufferSize`` events behind loses the oldest waiting ones (newest
    /// kept; counted in ``droppedEvents``). After the agent stopped the sequence is empty.
    public var events: AsyncStream<ClusterEvent> { hub.subscribe() }

    /// Events lost by slow ``events`` subscribers so far.
    public var droppedEvents: UInt64 { hub.dropped.load(ordering: .relaxed) }

    /// Calls `handler` for every core event, on the thread carrying out the loop's effects (tests).
    @_spi(Testing) public func onEvent(_ handler: @escaping @Sendable (PeerEvent) -> Void) {
        loop.withLock { $0.handlers.append(handler) }
    }

    // MARK: State

    /// The members this agent holds live, held-back newcomers included (§6.1.8): those a
    /// broadcast reaches, whose answers it waits for.
    func liveMemberIDs() -> Set<NodeID> {
        loop.withLock { Set($0.peer.members.values.lazy.filter(\.isLive).map(\.id)) }
    }

    /// This agent's view of the others (itself not included), by name then id: the published
    /// view (Protocol.md §6.1.8), where newcomers enter together once they settle, as their
    /// `joined` events do.
    public func members() -> [ClusterMember] {
        let now = System.now().nanos
        return loop.withLock { state in state.peer.publishedMembers.map { ClusterMember($0, now: now, tags: state.peer.tags(of: $0.id)) } }
            .sorted { a, b in
                bytesEqual(a.name, b.name) ? a.id < b.id : bytesPrecede(a.name, b.name)
            }
    }

    /// True from the moment the loop runs until it stops.
    public var isRunning: Bool { loop.withLock { $0.running } }

    /// Calls made before ``run(handlingSignals:)`` has started the loop wait for it; after the
    /// agent stopped they throw ``AgentError/notRunning``.
    func waitUntilRunning() async throws(AgentError) {
        while !isRunning {
            if finished.load(ordering: .acquiring) { throw .notRunning }
            if Task.isCancelled { throw .cancelled }
            try? await Task.sleep(for: .milliseconds(1))
        }
    }

    /// This agent's Lamport clock: it only grows.
    public var clock: UInt64 { loop.withLock { $0.peer.clock.value } }
    /// Raised each time this agent refutes a suspicion of itself.
    public var incarnation: UInt32 { loop.withLock { $0.peer.incarnation } }
    /// Revoked ids held.
    public var revokedCount: Int { loop.withLock { $0.peer.revoked.count } }
    /// True when `id` is revoked here (compared as bytes).
    public func isRevoked(_ id: String) -> Bool { loop.withLock { $0.peer.revoked.contains(id) } }
    /// True once mingle finished (synced with neighbours, alone, or at its deadline).
    public var isSynced: Bool { loop.withLock { $0.peer.isSynced } }
    /// The core's counters (tests and benchmarks).
    @_spi(Testing) public var counters: Counters { loop.withLock { $0.peer.counters } }

    /// The leader this agent knows for `topic`; nil when it knows none.
    public func leader(of topic: String) -> Leadership? {
        let known = loop.withLock { $0.peer.leader(of: topic) }
        return Leadership(topic: topic, name: known.name, id: known.id, term: known.term)
    }

    /// This agent's own tags.
    public var tags: MemberTags { loop.withLock { $0.peer.tags } }

    /// Replaces this agent's tags while it runs: its incarnation rises and the new tags reach
    /// every member's view by multicast at once (Protocol.md §3.4.1), then by probing. A call
    /// made before the agent runs waits for it; after it stopped the call throws
    /// ``AgentError/notRunning``. Setting the tags it already has changes nothing.
    public func setTags(_ tags: MemberTags) async throws(AgentError) {
        try await waitUntilRunning()
        guard applyTags(tags) != nil else { throw .notRunning }
    }

    /// Hands `tags` to the core (``setTags(_:)``, a reload): nil when the loop does not run,
    /// else whether they differed from the agent's own.
    func applyTags(_ tags: MemberTags) -> Bool? {
        let changed = withCore { state, now -> Bool? in
            guard state.running else { return nil }
            guard state.peer.tags != tags else { return false }
            perform(state.peer.setTags(tags, now: now), state: &state, now: now)
            return true
        }
        if changed == true { wakePipe.wake() }
        return changed
    }

    /// True while this agent leads `topic`.
    public func isLeader(of topic: String) -> Bool { leader(of: topic)?.leaderID == id }

    /// Changes fault injection while running (tests and benchmarks).
    @_spi(Testing) public func setFaults(_ settings: FaultSettings) {
        loop.withLock { $0.faults.settings = settings }
    }

    // MARK: Commands

    /// Holds an election for `topic` (lowest clock wins, ties by node id) and returns the leader
    /// it agreed on. Throws ``AgentError/noQuorum(topic:have:need:)`` when quorum mode cannot
    /// decide, ``AgentError/timedOut`` when no leader came within `timeout`,
    /// ``AgentError/cancelled`` when the task is cancelled first, and ``AgentError/notRunning``
    /// when the agent stopped. Like every command, a call made before the agent runs waits
    /// until it does.
    public func elect(_ topic: String, timeout: Duration = .seconds(10)) async throws(AgentError) -> Leadership {
        guard Limits.topicBytes.contains(topic.utf8.count) else {
            throw .invalidArgument("topic must be 1 to 64 bytes (it has \(topic.utf8.count))")
        }
        try await waitUntilRunning()
        let (stream, subscription) = hub.subscribeInternal()
        enum Start: Sendable { case notRunning, waiting(term: UInt64), refused, known(Leadership) }
        let start = withCore { state, now -> Start in
            guard state.running else { return .notRunning }
            perform(state.peer.elect(topic, now: now), state: &state, now: now)
            guard let election = state.peer.elections[ByteString(topic)] else { return .refused }
            // Decided at once (alone), or no new term could start (the topic is at the highest
            // term, whose leader stays: Protocol.md §6.4); without a leader a `noQuorum` is on
            // its way, or the deadline below ends the wait.
            let known = state.peer.leader(of: topic)
            if election.phase == .collecting || election.phase == .voting || known.id == nil { return .waiting(term: election.term) }
            return Leadership(topic: topic, name: known.name, id: known.id, term: known.term).map { .known($0) } ?? .waiting(term: election.term)
        }
        wakePipe.wake()
        var term: UInt64 = 0
        switch start {
        case .notRunning: throw .notRunning
        case .known(let leadership): return leadership
        case .refused: throw .invalidArgument("no election could start for '\(Escape.display(topic))': this agent's topic table is full (Protocol.md §6.6)")
        case .waiting(let started): term = started
        }
        // The wait ends at the deadline too: a leader that is known by then is the answer.
        let expired = Flag()
        let timer = Task { [hub] in
            try? await Task.sleep(for: timeout)
            guard !Task.isCancelled else { return }
            expired.set()
            hub.end(subscription)
        }
        defer { timer.cancel() }
        for await event in stream {
            switch event {
            case .leaderChanged(let changed, let leadership?) where bytesEqual(changed, topic) && leadership.term >= term:
                return leadership
            case .noQuorum(let changed, let decided, let have, let need) where bytesEqual(changed, topic) && decided >= term:
                throw .noQuorum(topic: topic, have: have, need: need)
            default:
                continue
            }
        }
        if Task.isCancelled { throw .cancelled }
        if expired.isSet {
            if let leadership = leader(of: topic), leadership.term >= term { return leadership }
            throw .timedOut
        }
        throw .notRunning
    }

    /// Revokes `ids` here and on every live member and returns when all have acknowledged (each
    /// only once the ids are kept), or at `timeout` at the latest. More ids than fit one request
    /// go out in several, all within the one `timeout`. While this agent cannot keep revokes on
    /// disk the ids are still held in memory and sent to the others, and
    /// ``RevokeResult/notDurable`` says why. Throws ``AgentError/invalidArgument(_:)`` for no
    /// ids or an id outside 1 to 128 bytes (nothing is revoked then).
    public func revoke(_ ids: [String], timeout: Duration = .seconds(2)) async throws(AgentError) -> RevokeResult {
        guard !ids.isEmpty else { throw .invalidArgument("revoke needs at least one id") }
        if let bad = ids.first(where: { !Limits.revokedIDBytes.contains($0.utf8.count) }) {
            throw .invalidArgument("a revoked id is 1 to 128 bytes ('\(Escape.display(bad.prefix(40)))' has \(bad.utf8.count))")
        }
        try await waitUntilRunning()
        let expected = liveMemberIDs()
        let batches = loop.withLock { $0.peer.requestBatches(ids, command: "revoke") }
        let sum = System.now().nanos.addingReportingOverflow(timeout.nanos)
        let deadline = sum.overflow ? UInt64.max : sum.partialValue
        var replies: [Reply] = []
        for batch in batches {
            let now = System.now().nanos
            let options = RequestOptions(deadline: max(1, deadline &- min(deadline, now)))
            replies += try await collect { state, now in state.peer.revoke(batch, options: options, now: now) }.replies
        }
        return RevokeResult(ids: ids, batches: batches.count, replies: replies, expected: expected, notDurable: loop.withLock { $0.peer.durabilityError })
    }

    /// Asks the other agents (or those whose name matches `target`, a glob) to answer, and
    /// returns who did with the round-trip time of each.
    public func ping(target: String = "", timeout: Duration = .seconds(2)) async throws(AgentError) -> [PingReply] {
        try await request("ping", target: target, timeout: timeout).replies
            .filter { $0.status == .ok }.map { PingReply(name: $0.name, id: $0.id, roundTrip: $0.latency) }
    }

    /// Every agent's counters and state (or those matching `target`), this one's included.
    public func stats(target: String = "", timeout: Duration = .seconds(2)) async throws(AgentError) -> [AgentStats] {
        let others = try await request("stats", target: target, timeout: timeout).replies
            .filter { $0.status == .ok }.map { AgentStats(json: $0.json, name: $0.name, id: $0.id) }
        let (own, tags) = loop.withLock { ($0.peer.stats(now: System.now()), $0.peer.tags) }
        guard Glob.matchesTarget(target, configuration.name, tags: tags) else { return others }
        return [AgentStats(json: own, name: configuration.name, id: id)] + others
    }

    /// Sends control command `command` to the other agents (or those whose name matches
    /// `target`, a glob) and collects their replies: the way to commands without a typed
    /// method. Collection ends when `expected` replies came (by default: every live member that
    /// matches), when none came for 250 ms after the last, or at `timeout`.
    public func request(_ command: String, args: [String] = [], target: String = "", expected: Int? = nil,
                        timeout: Duration = .seconds(2)) async throws(AgentError) -> RequestResult {
        try await request(command, args: args, target: target, options: RequestOptions(expected: expected, deadline: timeout.nanos))
    }

    /// ``request(_:args:target:expected:timeout:)`` with every setting of the core's.
    @_spi(Testing) public func request(_ command: String, args: [String] = [], target: String = "", options: RequestOptions?) async throws(AgentError) -> RequestResult {
        var options = options ?? RequestOptions()
        if options.expected == nil {
            let matching = loop.withLock { state in
                state.peer.members.values.filter { $0.isLive && Glob.matchesTarget(target, $0.name, tags: state.peer.tags(of: $0.id)) }.count
            }
            // Nobody to ask: no need to wait for the deadline.
            if matching == 0 { return RequestResult(replies: [], reason: .allReplied, expected: 0) }
            options.expected = matching
        }
        return try await collect { [options] state, now in
            state.peer.request(command, args: args, target: target, options: options, now: now)
        }
    }

    /// Runs `body` to send a request and waits for its replies; cancelling the task stops the
    /// wait (and the collection) at once.
    func collect(_ body: @escaping @Sendable (inout LoopState, Now) -> (UInt32, [Action])) async throws(AgentError) -> RequestResult {
        try await waitUntilRunning()
        let waiter = RequestWaiter(startedAt: System.now().nanos)
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                guard waiter.install(continuation) else { return }
                let running = withCore { state, now -> Bool in
                    guard state.running else { return false }
                    let (id, actions) = body(&state, now)
                    if waiter.isCancelled {
                        state.peer.cancelRequest(id)
                    } else {
                        state.waiters[id] = waiter
                        waiter.requestID = id
                    }
                    perform(actions, state: &state, now: now)
                    return true
                }
                if !running { waiter.stop() }
                wakePipe.wake()
            }
        } onCancel: {
            waiter.stop(cancelled: true)
            // Under the loop lock: the request id is set under it, so it is either set already
            // or the request sees the cancellation and is not kept.
            loop.withLock { state in
                guard let id = waiter.requestID else { return }
                state.waiters.removeValue(forKey: id)
                state.peer.cancelRequest(id)
            }
        }
        guard let result else { throw waiter.isCancelled ? .cancelled : .notRunning }
        return result
    }
}

/// A one-way switch shared with a timer task.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}

/// Collects the replies of one request for an async caller.
final class RequestWaiter: Sendable {
    private struct State {
        var replies: [Reply] = []
        var continuation: CheckedContinuation<RequestResult?, Never>?
        /// Resumed already (finished, stopped or cancelled): later calls do nothing.
        var done = false
        var cancelled = false
        var requestID: UInt32?
    }

    private let state = Mutex(State())
    private let startedAt: UInt64

    init(startedAt: UInt64) {
        self.startedAt = startedAt
    }

    var isCancelled: Bool { state.withLock { $0.cancelled } }
    var requestID: UInt32? {
        get { state.withLock { $0.requestID } }
        set { state.withLock { $0.requestID = newValue } }
    }

    /// Takes the continuation; false (and resumed with nil) when the wait already ended.
    func install(_ continuation: CheckedContinuation<RequestResult?, Never>) -> Bool {
        let ended = state.withLock { state -> Bool in
            if state.done { return true }
            state.continuation = continuation
            return false
        }
        if ended { continuation.resume(returning: nil) }
        return !ended
    }

    func add(_ reply: Reply) {
        var reply = reply
        reply.latency = .nanos(System.now().nanos &- min(System.now().nanos, startedAt))
        state.withLock { if !$0.done { $0.replies.append(reply) } }
    }

    func finish(_ reason: RequestEnd, expected: Int?) {
        resume { RequestResult(replies: $0, reason: reason, expected: expected) }
    }

    /// Ends the wait without a result: the agent stopped, or (`cancelled`) the task was cancelled.
    func stop(cancelled: Bool = false) {
        if cancelled { state.withLock { $0.cancelled = true } }
        resume { _ in nil }
    }

    private func resume(_ result: ([Reply]) -> RequestResult?) {
        let (replies, continuation) = state.withLock { state -> ([Reply], CheckedContinuation<RequestResult?, Never>?) in
            guard !state.done else { return ([], nil) }
            state.done = true
            defer { state.continuation = nil }
            return (state.replies, state.continuation)
        }
        continuation?.resume(returning: result(replies))
    }
}

extension Agent {
    // MARK: Reload

    /// Re-reads what may change while running, without dropping membership: the cluster keys
    /// (from ``Configuration/keyFile``, or the `key-file` of ``Configuration/settingsFile``) and
    /// the log level (`log-level` there), and the tags (`tag` lines there, unless tags were given
    /// by `--tag`: see ``Configuration/tags``; a change goes out as ``setTags(_:)`` sends it). The first key signs and every key verifies, so keys
    /// rotate in three reloads: add the new key second, move it first, remove the old one
    /// (README, "Operating Starling"). Nothing changes when a file cannot be read, holds no
    /// valid key, or would turn authentication on or off (that takes a restart): the error says
    /// why and the old keys and level stay. Returns what changed, for the log. SIGHUP (with
    /// `run(handlingSignals: true)`) and an authorised `reload` command call it too.
    @discardableResult
    public func reload() throws(AgentError) -> [String] {
        try reloading.withLock { _ throws(AgentError) in
            guard loop.withLock({ !$0.stopRequested }), !finished.load(ordering: .acquiring) else { throw .notRunning }
            let (keyFile, level, tags) = try configuration.reloadable()
            var changes: [String] = []
            if let keyFile {
                let keys = try KeyFile.load(keyFile)
                let rotated = loop.withLock { state -> Bool? in
                    state.peer.config.keys == keys ? nil : state.peer.rotateKeys(keys)
                }
                if rotated == false {
                    throw .keyFile("\(Escape.display(keyFile)): authentication cannot be turned on or off while running; restart the agent")
                }
                if rotated == true { changes.append("keys \(keys.map(\.fingerprint).joined(separator: ", "))") }
            }
            if let tags, applyTags(tags) == true { changes.append("tags \(tags.isEmpty ? "none" : tags.description)") }
            if level != logger.level {
                changes.append("log level \(logger.level.name) -> \(level.name)")
                logger.level = level
            }
            return changes
        }
    }

    /// ``reload()`` for SIGHUP and the `reload` command: the outcome goes to the log.
    func reloadLogged(requestedBy requester: String) {
        do {
            let changes = try reload()
            logger.log(.info, "reload (\(requester)): " + (changes.isEmpty ? "nothing changed" : changes.joined(separator: "; ")))
        } catch {
            logger.log(.error, "reload (\(requester)) refused, nothing changed: \(error)")
        }
    }
}
