import Synchronization

/// The subscribers of ``Agent/events``: one `AsyncStream` each, fed in order by the thread that
/// carries out the loop's effects, finished when the agent stops.
final class EventHub: Sendable {
    private struct State {
        var subscribers: [UInt64: AsyncStream<ClusterEvent>.Continuation] = [:]
        var nextID: UInt64 = 0
        var finished = false
    }

    private let state = Mutex(State())
    /// Events a slow subscriber lost (its buffer was full; the oldest waiting one went).
    let dropped = Atomic<UInt64>(0)
    /// Read without the lock on every event: nothing is queued for a hub nobody listens to.
    let subscriberCount = Atomic<Int>(0)
    private let bufferSize: Int

    init(bufferSize: Int) {
        self.bufferSize = bufferSize
    }

    /// A new stream of every event from now on; already finished when the agent has stopped.
    func subscribe() -> AsyncStream<ClusterEvent> { subscribeInternal(false).stream }

    /// With `keepingAll` (the agent's own waits, read at once) every event is kept; ``end(_:)``
    /// ends one early (a deadline).
    func subscribeInternal(_ keepingAll: Bool = true) -> (stream: AsyncStream<ClusterEvent>, id: UInt64) {
        let (stream, continuation) = AsyncStream.makeStream(of: ClusterEvent.self,
            bufferingPolicy: keepingAll ? .unbounded : .bufferingNewest(bufferSize))
        let id: UInt64? = state.withLock { state in
            guard !state.finished else { return nil }
            let id = state.nextID
            state.nextID &+= 1
            state.subscribers[id] = continuation
            subscriberCount.add(1, ordering: .relaxed)
            return id
        }
        guard let id else {
            continuation.finish()
            return (stream, .max)
        }
        continuation.onTermination = { [weak self] _ in self?.remove(id) }
        return (stream, id)
    }

    /// Ends one subscriber's stream now.
    func end(_ id: UInt64) {
        state.withLock { $0.subscribers[id] }?.finish()
    }

    private func remove(_ id: UInt64) {
        state.withLock { state in
            if state.subscribers.removeValue(forKey: id) != nil { subscriberCount.subtract(1, ordering: .relaxed) }
        }
    }

    func publish(_ event: ClusterEvent) {
        let subscribers = state.withLock { Array($0.subscribers.values) }
        for continuation in subscribers {
            if case .dropped = continuation.yield(event) { dropped.add(1, ordering: .relaxed) }
        }
    }

    /// Ends every stream (the agent stopped); later subscribers get an ended stream.
    func finish() {
        let subscribers = state.withLock { state in
            state.finished = true
            defer { state.subscribers.removeAll() }
            return Array(state.subscribers.values)
        }
        subscriberCount.store(0, ordering: .relaxed)
        for continuation in subscribers { continuation.finish() }
    }
}
