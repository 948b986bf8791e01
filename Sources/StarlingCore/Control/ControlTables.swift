/// The bounded tables of the control plane (Protocol.md §3.5.1, §6.6). Each refuses or drops
/// at its bound instead of growing, and says so to its caller so that the limit is counted.

/// A request this peer has run, keyed by sender and request id.
struct RequestKey: Hashable, Sendable {
    var sender: NodeID
    var requestID: UInt32
}

/// One run request: kept so that a repeat is answered from the first run's reply instead of
/// running the command twice (Protocol.md §3.5.1, §6.5).
struct AnsweredRequest: Sendable {
    var expires: UInt64
    var status: ControlStatus = .ok
    /// Nil while the answer is deferred (`elect`) or when it was too large to keep.
    var body: String?
}

/// The run-once table: every request run in the last while, with its reply kept for repeats.
/// At most ``capacity`` entries and ``keptBytesLimit`` bytes of kept bodies; the byte total is
/// kept as a running sum so that no request pays for the size of the table.
struct RunOnceTable: Sendable {
    static let capacity = 8_192
    /// A kept reply body is at most this large (larger ones are not repeated).
    static let bodyLimit = 64 * 1_024
    static let keptBytesLimit = 16 * bodyLimit

    private(set) var entries: [RequestKey: AnsweredRequest] = [:]
    /// Bytes of the kept bodies.
    private(set) var keptBytes = 0
    private var nextPruneAt: UInt64 = 0

    var count: Int { entries.count }

    subscript(key: RequestKey) -> AnsweredRequest? { entries[key] }

    /// Whether a new request can be remembered. Requests without effects only use the lower half,
    /// so that a flood of them never leaves a command with effects unable to run.
    func hasRoom(effects: Bool) -> Bool {
        entries.count < (effects ? Self.capacity : Self.capacity / 2)
    }

    /// Remembers a request before it runs (its reply, if any, is kept by ``keep(_:status:body:)``).
    mutating func record(_ key: RequestKey, expires: UInt64) {
        forget(key)
        entries[key] = AnsweredRequest(expires: expires)
    }

    /// Keeps the reply of a remembered request for repeats, when it fits the bounds.
    mutating func keep(_ key: RequestKey, status: ControlStatus, body: String) {
        let size = body.utf8.count
        guard let entry = entries[key], entry.body == nil, size <= Self.bodyLimit, size <= Self.keptBytesLimit - keptBytes else { return }
        entries.modify(key) { entry in
            entry.status = status
            entry.body = body
        }
        keptBytes += size
    }

    /// Forgets expired entries. Runs at most once per second, so a full table costs one pass per
    /// second however many requests arrive; an entry may outlive its time by that second.
    mutating func prune(now: UInt64) {
        guard now >= nextPruneAt else { return }
        nextPruneAt = UInt64.later(now, .millis(1_000))
        for (key, entry) in entries where entry.expires <= now { forget(key) }
    }

    /// Drops every kept reply; the entries stay, so a repeat goes unanswered rather than run
    /// again (used when the shell withheld replies it could not stand behind).
    mutating func dropKeptReplies() {
        for key in entries.keys { entries.modify(key) { $0.body = nil } }
        keptBytes = 0
    }

    private mutating func forget(_ key: RequestKey) {
        guard let old = entries.removeValue(forKey: key) else { return }
        keptBytes -= old.body?.utf8.count ?? 0
    }
}

/// `elect` requests waiting for their topic to be decided: at most ``perTopic`` per topic and
/// ``capacity`` in all; a waiter not answered within ``lifetime`` is dropped unanswered.
struct ElectWaiters: Sendable {
    static let perTopic = 64
    static let capacity = 1_024
    static let lifetime: UInt64 = .millis(10_000)

    struct Waiter: Sendable {
        /// The requester, to keep the answer for its retries in the run-once table.
        var sender: NodeID
        var endpoint: Endpoint
        var requestID: UInt32
        var expires: UInt64
    }

    /// Keyed by topic bytes, as elections are.
    private(set) var byTopic: [ByteString: [Waiter]] = [:]
    private(set) var count = 0
    private var nextPruneAt: UInt64 = 0

    /// Adds a waiter; false when the topic or the table is full.
    mutating func add(_ topic: String, sender: NodeID, endpoint: Endpoint, requestID: UInt32, now: UInt64) -> Bool {
        let waiting = byTopic[ByteString(topic)]?.count ?? 0
        guard waiting < Self.perTopic, count < Self.capacity else { return false }
        let waiter = Waiter(sender: sender, endpoint: endpoint, requestID: requestID, expires: UInt64.later(now, Self.lifetime))
        byTopic[ByteString(topic), default: []].append(waiter)
        count += 1
        return true
    }

    /// Whether requests wait for a decision on `topic`.
    func isWaiting(_ topic: ByteString) -> Bool { byTopic[topic] != nil }

    /// Removes and returns the waiters of `topic`.
    mutating func take(_ topic: String) -> [Waiter] {
        guard let waiting = byTopic.removeValue(forKey: ByteString(topic)) else { return [] }
        count -= waiting.count
        return waiting
    }

    /// Drops expired waiters, at most once per second.
    mutating func prune(now: UInt64) {
        guard now >= nextPruneAt, count > 0 else { return }
        nextPruneAt = UInt64.later(now, .millis(1_000))
        for (topic, waiting) in byTopic {
            let kept = waiting.filter { $0.expires > now }
            guard kept.count != waiting.count else { continue }
            count -= waiting.count - kept.count
            byTopic[topic] = kept.isEmpty ? nil : kept
        }
    }
}

/// A watcher registered by `watch`: events go to it as CONTROL_REPLY pages until it expires.
struct Watcher: Sendable {
    var requestID: UInt32
    var expires: UInt64
}
