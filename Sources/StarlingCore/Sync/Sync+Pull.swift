/// Pulls of revoked pages and serving them (Protocol.md §6.3.2).
extension Sync {
    mutating func startPull(from id: NodeID, at endpoint: Endpoint, forMingle: Bool, now: Now, out: inout Outbox) {
        var pull = SyncSession(peer: id, endpoint: endpoint, forMingle: forMingle, retryAt: now.nanos + config.pageTimeout,
            hardDeadline: now.nanos + (forMingle ? config.mingleDeadline : .millis(10_000)), lastProgressAt: now.nanos)
        if revoked.isEmpty {
            pull.mask = UInt64.max
            if let digest = mingle.repliers[id]?.digest { revoked.reserve(Int(digest.count)) }
            session = pull
            requestRange(after: "", until: "", now: now, out: &out)
        } else {
            let requestID = out.newRequestID()
            pull.digestRequestID = requestID
            session = pull
            out.send(.digestRequest(requestID: requestID), to: .peer(endpoint))
        }
    }

    /// Whether a pull from `id` may start now (anti-entropy): none runs, mingle is over and
    /// the last pull from it ended long enough ago.
    func mayPull(from id: NodeID, now: Now) -> Bool {
        session == nil && mingle.phase == .done && (cooldown[id] ?? 0) <= now.nanos
    }

    func onDigestRequest(_ requestID: UInt32, replyTo: Endpoint, out: inout Outbox) {
        out.send(.digestReply(DigestReply(requestID: requestID, buckets: revoked.bucketDigests)), to: .peer(replyTo))
    }

    mutating func onDigestReply(_ reply: DigestReply, from sender: NodeID, now: Now, out: inout Outbox) {
        guard var pull = session, pull.peer == sender, pull.digestRequestID == reply.requestID else { return }
        pull.digestRequestID = nil
        pull.mask = revoked.bucketsToPull(from: reply.buckets)
        session = pull
        if pull.mask == 0 {
            endPull(now: now, out: &out)
        } else {
            requestRange(after: "", until: "", now: now, out: &out)
        }
    }

    private mutating func requestRange(after: String, until: String, now: Now, out: inout Outbox) {
        guard var pull = session else { return }
        let requestID = out.newRequestID()
        pull.bursts[requestID] = SyncSession.Burst(after: after, until: until, requestedAt: now.nanos)
        pull.retryAt = now.nanos + settleTimeout(pull)
        session = pull
        let request = PageRequest(requestID: requestID, bucketMask: pull.mask, maxPages: config.pageBurst, cursor: after, until: until)
        out.send(.pageRequest(request), to: .peer(pull.endpoint))
    }

    /// Serves up to `maxPages` pages of the requested range, back to back.
    mutating func onPageRequest(_ request: PageRequest, replyTo: Endpoint, out: inout Outbox) {
        let budget = Limits.maxDatagram - out.overhead - 8
        var cursor = request.cursor
        // However many pages are asked for, one request is answered with at most a burst (§6.6).
        for index in 0..<min(request.maxPages, config.limits.pagesPerRequest) {
            let (entries, last) = revoked.page(after: cursor, until: request.until, mask: request.bucketMask, budget: budget)
            out.send(.page(RevokedPage(requestID: request.requestID, index: index, last: last, entries: entries)), to: .peer(replyTo))
            if last { break }
            cursor = entries.last?.id ?? cursor
        }
    }

    mutating func onPage(_ page: RevokedPage, from sender: NodeID, now: Now, out: inout Outbox) {
        guard var pull = session, pull.peer == sender, var burst = pull.bursts[page.requestID] else { return }
        var added = 0
        for entry in page.entries where revoked.insert(entry.id, revokedAtMillis: entry.revokedAtMillis, nowMillis: now.wallMillis) {
            added += 1
        }
        if added > 0 { out.append(.stateChanged) }
        if burst.pages.isEmpty { pull.roundTrip.add(now.nanos &- min(now.nanos, burst.requestedAt)) }
        pull.received += added
        if pull.forMingle { mingle.received += added }
        burst.pages[page.index] = (page.entries.first?.id ?? "", page.entries.last?.id ?? "")
        if page.last { burst.lastIndex = page.index }
        // The burst's final page while others are missing: ask for the rest of the range now and
        // leave this burst only its gaps, settled when they come or by the settle timeout (pages
        // may arrive out of order, so the gaps are not taken for lost yet).
        var continuation: (after: String, until: String)?
        // Once per burst: a copy of that page (duplicated or forged) asks for nothing more.
        if !page.last, burst.lastIndex == nil, page.index == config.pageBurst - 1, burst.pages.count <= Int(page.index),
           let lastID = page.entries.last?.id {
            continuation = (lastID, burst.until)
            burst.until = lastID
            burst.lastIndex = page.index
        }
        pull.bursts[page.requestID] = burst
        pull.silentSettles = 0
        pull.retryAt = now.nanos + settleTimeout(pull)
        pull.lastProgressAt = now.nanos
        session = pull
        if let continuation { requestRange(after: continuation.after, until: continuation.until, now: now, out: &out) }
        let final = burst.lastIndex ?? (config.pageBurst - 1)
        if burst.pages.count > Int(final) { settle(page.requestID, now: now, out: &out) }
    }

    /// Closes a burst: asks again for what it misses, then ends the pull when nothing is left.
    private mutating func settle(_ requestID: UInt32, now: Now, out: inout Outbox) {
        guard let burst = session?.bursts.removeValue(forKey: requestID) else { return }
        for (after, until) in burst.missingRanges { requestRange(after: after, until: until, now: now, out: &out) }
        if session?.bursts.isEmpty == true { endPull(now: now, out: &out) }
    }

    /// How long no PAGE settles the outstanding bursts: the pull's SRTT + 4 RTTVAR (RFC 6298)
    /// between 2 ms and the page timeout, the page timeout before the first sample
    /// (Protocol.md §6.3.2). A lost page or request then costs a few round trips, not 40 ms.
    /// Each settle in a row that no PAGE follows doubles it, up to the page timeout: a silent
    /// server is asked about 12 times before the pull gives up, not every 2 ms.
    func settleTimeout(_ pull: SyncSession) -> UInt64 {
        let base = pull.roundTrip.timeout(within: min(Self.settleFloor, config.pageTimeout)...config.pageTimeout)
        return min(base << UInt64(min(pull.silentSettles, 16)), max(base, config.pageTimeout))
    }

    static let settleFloor: UInt64 = .millis(2)

    private mutating func endPull(now: Now, out: inout Outbox) {
        guard let pull = session else { return }
        session = nil
        cooldown[pull.peer] = now.nanos + .millis(1_000)
        if pull.forMingle { finishMingleIfDone(now: now, out: &out) }
    }

    mutating func tickPull(now: Now, view: MemberView, out: inout Outbox) {
        guard var pull = session, now.nanos >= pull.retryAt else { return }
        if now.nanos >= pull.hardDeadline || now.nanos >= UInt64.later(pull.lastProgressAt, config.pageTimeout.saturatingMultiplied(by: 8)) || !view.isLive(pull.peer) {
            session = nil
            if pull.forMingle { pickMingleServer(now: now, out: &out); finishMingleIfDone(now: now, out: &out) }
            return
        }
        pull.silentSettles += 1
        pull.retryAt = now.nanos + settleTimeout(pull)
        session = pull
        if let requestID = pull.digestRequestID {
            out.send(.digestRequest(requestID: requestID), to: .peer(pull.endpoint))
            return
        }
        // Nothing came for a while: settle every burst with what it has.
        for requestID in pull.bursts.keys.sorted() { settle(requestID, now: now, out: &out) }
    }
}
