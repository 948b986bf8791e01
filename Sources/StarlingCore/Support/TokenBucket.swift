/// A token bucket on the injected monotonic clock: `capacity` tokens, refilled at `perSecond`.
/// Used for what an outsider can make a peer do per second (Protocol.md §6.6).
struct TokenBucket: Sendable {
    let capacity: UInt64
    let perSecond: UInt64
    private(set) var tokens: UInt64
    private var updatedAt: UInt64

    init(capacity: UInt64, perSecond: UInt64, now: UInt64) {
        self.capacity = capacity
        self.perSecond = perSecond
        self.tokens = capacity
        self.updatedAt = now
    }

    /// Tokens after refilling up to `now`. Only whole tokens are added, and the clock of the
    /// bucket moves by the time they took, so that frequent calls do not lose the fractions
    /// (a bucket of 256/s asked every millisecond must still refill). A stale `now` adds nothing.
    mutating func refill(now: UInt64) {
        guard now > updatedAt else { return }
        guard tokens < capacity, perSecond > 0 else {
            updatedAt = now
            return
        }
        let elapsed = now - updatedAt
        let (product, overflow) = elapsed.multipliedReportingOverflow(by: perSecond)
        let added = overflow ? capacity : product / 1_000_000_000
        guard added > 0 else { return }
        if added >= capacity - tokens {
            tokens = capacity
            updatedAt = now
            return
        }
        tokens += added
        let (spent, wraps) = added.multipliedReportingOverflow(by: 1_000_000_000)
        updatedAt = wraps ? now : min(now, updatedAt + spent / perSecond)
    }

    /// True when at least one token is left (a request may run; its cost is charged after).
    mutating func hasTokens(now: UInt64) -> Bool {
        refill(now: now)
        return tokens > 0
    }

    /// Whether the bucket is back in full at `now`: then it is the same as a fresh one.
    func isFull(now: UInt64) -> Bool {
        var refilled = self
        refilled.refill(now: now)
        return refilled.tokens >= refilled.capacity
    }

    /// Takes `count` tokens, down to zero.
    mutating func take(_ count: UInt64, now: UInt64) {
        refill(now: now)
        tokens -= min(tokens, count)
    }
}

/// Bytes this peer may send in answer to requests: per destination and in all (Protocol.md
/// §6.6), so that a small forged request cannot make it flood a victim or the LAN.
struct AnswerBudget: Sendable {
    var perDestination: [Endpoint: TokenBucket] = [:]
    var total: TokenBucket
    let limits: PeerConfig.Limits
    private var nextSweepAt: UInt64 = 0

    init(limits: PeerConfig.Limits, now: UInt64) {
        self.limits = limits
        self.total = TokenBucket(capacity: limits.answerBytesBurst * 4, perSecond: limits.answerBytesPerSecond * 8, now: now)
    }

    /// Whether a request from `endpoint` may be answered now.
    mutating func allows(_ endpoint: Endpoint, now: UInt64) -> Bool {
        guard total.hasTokens(now: now) else { return false }
        guard var bucket = perDestination[endpoint] else { return true }
        let ok = bucket.hasTokens(now: now)
        perDestination[endpoint] = bucket
        return ok
    }

    /// Charges bytes sent to `endpoint` in answer to one request.
    mutating func charge(_ bytes: UInt64, to endpoint: Endpoint, now: UInt64) {
        guard bytes > 0 else { return }
        total.take(bytes, now: now)
        if now >= nextSweepAt { sweep(now: now) }
        if perDestination[endpoint] == nil, perDestination.count >= limits.answerDestinations { makeRoom(now: now) }
        var bucket = perDestination[endpoint]
            ?? TokenBucket(capacity: limits.answerBytesBurst, perSecond: limits.answerBytesPerSecond, now: now)
        bucket.take(bytes, now: now)
        perDestination[endpoint] = bucket
    }

    /// Forgets every bucket back at the brim (the same as a fresh one), at most once a second:
    /// the table then holds the destinations answered lately, not every one answered since the
    /// start. A peer in a cluster of thousands answers more than 1,024 of them in a cold start,
    /// and a full table of idle buckets was about a seventh of a simulated peer's memory at
    /// 2,000 peers (A.2 item 3).
    private mutating func sweep(now: UInt64) {
        nextSweepAt = now.saturatingAdd(.millis(1_000))
        guard !perDestination.isEmpty else { return }
        forgetFullBuckets(now: now)
    }

    /// A new dictionary sized to what is kept: removing in place would keep the capacity.
    private mutating func forgetFullBuckets(now: UInt64) {
        perDestination = perDestination.filter { !$0.value.isFull(now: now) }
    }

    /// The table is full. Every bucket refilled to the brim is the same as a fresh one, so all
    /// of those are forgotten at once: one pass then frees room for many new destinations,
    /// where forgetting one per new destination scanned the whole table each time. If none is,
    /// the destination owed least goes (most tokens left, the lowest address and port among
    /// equals: not the dictionary's order, which is seeded per process).
    private mutating func makeRoom(now: UInt64) {
        // Checked before the table is rebuilt: under a flood of new sources none is full, and a
        // rebuild for every new destination would cost an allocation and a rehash each.
        if perDestination.values.contains(where: { $0.isFull(now: now) }) { return forgetFullBuckets(now: now) }
        var victim: Endpoint?
        var most: UInt64 = 0
        for (key, var bucket) in perDestination {
            bucket.refill(now: now)
            if victim == nil || bucket.tokens > most || (bucket.tokens == most && key.precedes(victim ?? key)) {
                (victim, most) = (key, bucket.tokens)
            }
        }
        if let victim { perDestination[victim] = nil }
    }
}
