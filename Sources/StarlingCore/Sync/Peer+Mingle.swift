/// Mingle (join sync) and revoked-set anti-entropy (Protocol.md §3.2, §6.3).
public struct MingleState: Sendable {
    enum Phase: Sendable { case idle, searching, done }
    var phase: Phase = .idle
    var requestID: UInt32 = 0
    var startedAt: UInt64 = 0
    var helloSends = 0
    var nextHelloAt: UInt64 = 0
    var aloneAt: UInt64 = 0
    /// Set at the first reply: when the replies that can still come have had time to come.
    var settleAt: UInt64?
    /// That time has passed: finish as soon as the pull is done.
    var settled = false
    var deadline: UInt64 = 0
    var repliers: [NodeID: (endpoint: Endpoint, digest: SetDigest)] = [:]
    var expected = 0
    var received = 0
    var triedServers: Set<NodeID> = []

    var nextWake: UInt64? {
        guard phase == .searching else { return nil }
        return min(nextHelloAt, settleAt ?? (repliers.isEmpty ? aloneAt : deadline), deadline)
    }
}

/// One pull of revoked entries from one peer: digest first (unless everything is wanted), then
/// ranges of ids requested as bursts of pages. A lost page leaves a gap between the pages around
/// it; only that gap is asked for again (Protocol.md §6.3.2).
public struct SyncSession: Sendable {
    var peer: NodeID
    var endpoint: Endpoint
    var forMingle: Bool
    var digestRequestID: UInt32?
    var mask: UInt64 = 0
    /// Outstanding bursts by request id.
    var bursts: [UInt32: Burst] = [:]
    var retryAt: UInt64
    var hardDeadline: UInt64
    var stalls = 0
    var received = 0

    /// One requested range (after, until) and the pages received for it so far.
    struct Burst: Sendable {
        var after: String
        var until: String
        /// Page index → (first id, last id); empty strings for an empty page.
        var pages: [UInt8: (first: String, last: String)] = [:]
        var lastIndex: UInt8?
    }
}

extension Peer {
    public var isSynced: Bool { mingle.phase == .done }

    mutating func startMingle(now: Now, into actions: inout [Action]) {
        mingle = MingleState()
        mingle.phase = .searching
        mingle.requestID = newRequestID()
        mingle.startedAt = now.nanos
        mingle.aloneAt = now.nanos + config.aloneAfter
        mingle.deadline = now.nanos + config.mingleDeadline
        actions.append(.emit(.searching))
        sendHello(now: now, into: &actions)
    }

    private mutating func sendHello(now: Now, into actions: inout [Action]) {
        var destinations = beatDestinations()
        if config.multicast { destinations.append(contentsOf: config.seeds.map { .peer($0) }) }
        send(.hello(Hello(requestID: mingle.requestID, revoked: revoked.digest)), to: destinations, into: &actions)
        mingle.helloSends += 1
        // Resend while replies are missing (loss); back off 40, 80, 160 ms.
        mingle.nextHelloAt = now.nanos + .millis(40) << UInt64(min(mingle.helloSends - 1, 4))
    }

    mutating func onHello(_ hello: Hello, header: Header, replyTo: Endpoint, now: Now, into actions: inout [Action]) {
        // Only members heard from lately can answer the joiner: one that crashed a moment ago
        // is still alive in the view, and counting it would make the joiner wait for it.
        let others = members.values.lazy.filter {
            $0.status == .alive && $0.id != header.sender && now.nanos &- $0.lastHeard <= 2 * $0.interval
        }.count
        let sample = members.values.lazy.filter { $0.isLive && $0.id != header.sender }.smallest(8) { $0.id < $1.id }.map { $0.entry() }
        let reply = HelloReply(requestID: hello.requestID, memberCount: UInt16(clamping: others + 1),
            revoked: revoked.digest, members: Array(sample))
        send(.helloReply(reply), to: .peer(replyTo), into: &actions)
    }

    mutating func onHelloReply(_ reply: HelloReply, header: Header, replyTo: Endpoint, now: Now, into actions: inout [Action]) {
        for entry in reply.members { merge(entry, source: replyTo.address, now: now, into: &actions) }
        guard mingle.phase == .searching, reply.requestID == mingle.requestID else { return }
        mingle.repliers[header.sender] = (replyTo, reply.revoked)
        mingle.expected = max(mingle.expected, Int(reply.memberCount))
        if mingle.settleAt == nil { mingle.settleAt = now.nanos + config.aloneAfter }
        if sync == nil { pickMingleServer(now: now, into: &actions) }
        finishMingleIfDone(now: now, into: &actions)
    }

    /// Only one neighbour serves pages to a joiner: the first replier whose set differs.
    private mutating func pickMingleServer(now: Now, into actions: inout [Action]) {
        let digest = revoked.digest
        let candidates = mingle.repliers.filter { $0.value.digest != digest && !mingle.triedServers.contains($0.key) }
        guard let (id, value) = candidates.min(by: { $0.value.digest.count > $1.value.digest.count || ($0.value.digest.count == $1.value.digest.count && $0.key < $1.key) }) else { return }
        mingle.triedServers.insert(id)
        startSync(with: id, at: value.endpoint, forMingle: true, now: now, into: &actions)
    }

    private mutating func finishMingleIfDone(now: Now, into actions: inout [Action]) {
        guard mingle.phase == .searching, sync?.forMingle != true else { return }
        let heard = mingle.repliers.count
        if heard > 0, heard >= mingle.expected || mingle.settled {
            finishMingle(complete: true, into: &actions)
        }
    }

    private mutating func finishMingle(complete: Bool, into actions: inout [Action]) {
        mingle.phase = .done
        if mingle.repliers.isEmpty {
            actions.append(.emit(.alone))
        } else {
            actions.append(.emit(.synced(nodes: mingle.repliers.count, clock: clock.value, received: mingle.received, complete: complete)))
        }
    }

    mutating func tickMingle(now: Now, into actions: inout [Action]) {
        guard mingle.phase == .searching else { return }
        if now.nanos >= mingle.deadline {
            if sync?.forMingle == true { sync = nil }
            finishMingle(complete: false, into: &actions)
            return
        }
        if mingle.repliers.isEmpty, now.nanos >= mingle.aloneAt {
            finishMingle(complete: true, into: &actions)
            return
        }
        // Replies came but fewer than the largest member count promised (a member crashed and
        // is not yet found dead): finish once the pull is done and the others had their time.
        if let settleAt = mingle.settleAt, now.nanos >= settleAt {
            mingle.settleAt = nil
            mingle.settled = true
            finishMingleIfDone(now: now, into: &actions)
            if mingle.phase != .searching { return }
        }
        if now.nanos >= mingle.nextHelloAt {
            if mingle.helloSends < 5 { sendHello(now: now, into: &actions) } else { mingle.nextHelloAt = mingle.deadline }
        }
    }

    // MARK: Pulling pages

    mutating func startSync(with id: NodeID, at endpoint: Endpoint, forMingle: Bool, now: Now, into actions: inout [Action]) {
        var session = SyncSession(peer: id, endpoint: endpoint, forMingle: forMingle, retryAt: now.nanos + config.pageTimeout,
            hardDeadline: now.nanos + (forMingle ? config.mingleDeadline : .millis(10_000)))
        if revoked.isEmpty {
            session.mask = UInt64.max
            if let digest = mingle.repliers[id]?.digest { revoked.reserve(Int(digest.count)) }
            sync = session
            requestRange(after: "", until: "", now: now, into: &actions)
        } else {
            let requestID = newRequestID()
            session.digestRequestID = requestID
            sync = session
            send(.digestRequest(requestID: requestID), to: .peer(endpoint), into: &actions)
        }
    }

    mutating func onDigestReply(_ reply: DigestReply, header: Header, now: Now, into actions: inout [Action]) {
        guard var session = sync, session.peer == header.sender, session.digestRequestID == reply.requestID else { return }
        session.digestRequestID = nil
        session.mask = revoked.bucketsToPull(from: reply.buckets)
        sync = session
        if session.mask == 0 {
            endSync(now: now, into: &actions)
        } else {
            requestRange(after: "", until: "", now: now, into: &actions)
        }
    }

    private mutating func requestRange(after: String, until: String, now: Now, into actions: inout [Action]) {
        guard var session = sync else { return }
        let requestID = newRequestID()
        session.bursts[requestID] = SyncSession.Burst(after: after, until: until)
        session.retryAt = now.nanos + config.pageTimeout
        sync = session
        let request = PageRequest(requestID: requestID, bucketMask: session.mask, maxPages: config.pageBurst, cursor: after, until: until)
        send(.pageRequest(request), to: .peer(session.endpoint), into: &actions)
    }

    /// Serves up to `maxPages` pages of the requested range, back to back.
    mutating func onPageRequest(_ request: PageRequest, replyTo: Endpoint, into actions: inout [Action]) {
        let budget = Limits.maxDatagram - overhead - 8
        var cursor = request.cursor
        // However many pages are asked for, one request is answered with at most a burst (§6.6).
        for index in 0..<min(request.maxPages, config.limits.pagesPerRequest) {
            let (entries, last) = revoked.page(after: cursor, until: request.until, mask: request.bucketMask, budget: budget)
            send(.page(RevokedPage(requestID: request.requestID, index: index, last: last, entries: entries)), to: .peer(replyTo), into: &actions)
            if last { break }
            cursor = entries.last?.id ?? cursor
        }
    }

    mutating func onPage(_ page: RevokedPage, header: Header, now: Now, into actions: inout [Action]) {
        guard var session = sync, session.peer == header.sender, var burst = session.bursts[page.requestID] else { return }
        var added = 0
        for entry in page.entries where revoked.insert(entry.id, revokedAtMillis: entry.revokedAtMillis, nowMillis: now.wallMillis) {
            added += 1
        }
        if added > 0 { actions.append(.stateChanged) }
        session.received += added
        if session.forMingle { mingle.received += added }
        burst.pages[page.index] = (page.entries.first?.id ?? "", page.entries.last?.id ?? "")
        if page.last { burst.lastIndex = page.index }
        session.bursts[page.requestID] = burst
        session.retryAt = now.nanos + config.pageTimeout
        session.stalls = 0
        sync = session
        let final = burst.lastIndex ?? (config.pageBurst - 1)
        if page.index == final || burst.pages.count > Int(final) { settle(page.requestID, now: now, into: &actions) }
    }

    /// Closes a burst: asks again for every gap between the pages that arrived, and for the rest
    /// of the range after the last page that did, then ends the session when nothing is left.
    private mutating func settle(_ requestID: UInt32, now: Now, into actions: inout [Action]) {
        guard var session = sync, let burst = session.bursts.removeValue(forKey: requestID) else { return }
        sync = session
        var ranges: [(String, String)] = []
        var lower = burst.after
        var gapOpen = false
        let highest = burst.pages.keys.max()
        for index in 0...(highest ?? 0) {
            if let page = burst.pages[index] {
                if gapOpen, !page.first.isEmpty { ranges.append((lower, page.first)) }
                if !page.last.isEmpty { lower = page.last }
                gapOpen = false
            } else {
                gapOpen = true
            }
        }
        // Pages after the highest one that arrived: unknown, so the rest of the range is open.
        if highest == nil || gapOpen || burst.lastIndex == nil { ranges.append((lower, burst.until)) }
        session = sync!
        sync = session
        for (after, until) in ranges { requestRange(after: after, until: until, now: now, into: &actions) }
        if sync?.bursts.isEmpty == true { endSync(now: now, into: &actions) }
    }

    private mutating func endSync(now: Now, into actions: inout [Action]) {
        guard let session = sync else { return }
        sync = nil
        syncCooldown[session.peer] = now.nanos + .millis(1_000)
        if session.forMingle { finishMingleIfDone(now: now, into: &actions) }
    }

    mutating func tickSync(now: Now, into actions: inout [Action]) {
        guard var session = sync, now.nanos >= session.retryAt else { return }
        let gone = members[session.peer].map { !$0.isLive } ?? true
        if now.nanos >= session.hardDeadline || session.stalls >= 8 || gone {
            sync = nil
            if session.forMingle { pickMingleServer(now: now, into: &actions); finishMingleIfDone(now: now, into: &actions) }
            return
        }
        session.stalls += 1
        session.retryAt = now.nanos + config.pageTimeout
        sync = session
        if let requestID = session.digestRequestID {
            send(.digestRequest(requestID: requestID), to: .peer(session.endpoint), into: &actions)
            return
        }
        // Nothing came for a while: settle every burst with what it has.
        for requestID in session.bursts.keys.sorted() { settle(requestID, now: now, into: &actions) }
    }

    /// A member whose beats keep showing a different digest gets its differences pulled.
    mutating func maybeStartAntiEntropy(with id: NodeID, now: Now, into actions: inout [Action]) {
        guard sync == nil, mingle.phase == .done, let member = members[id], member.status == .alive,
            member.digestMismatches >= 2, (syncCooldown[id] ?? 0) <= now.nanos
        else { return }
        members[id]?.digestMismatches = 0
        startSync(with: id, at: member.endpoint, forMingle: false, now: now, into: &actions)
    }

    /// Stores ids revoked here (by a command or the embedding API) at the current wall time.
    mutating func storeRevoked(_ ids: [String], by: String, now: Now, into actions: inout [Action]) -> Int {
        // Distinct ids (as bytes) now held: `revoke a a` stores one (Protocol.md §3.5.2).
        var stored: Set<ByteString> = []
        for id in ids where Limits.revokedIDBytes.contains(id.utf8.count) {
            if revoked.insert(id, revokedAtMillis: now.wallMillis, nowMillis: now.wallMillis) || revoked.contains(id) { stored.insert(ByteString(id)) }
        }
        actions.append(.stateChanged)
        actions.append(.emit(.revoked(ids: ids, by: by)))
        return stored.count
    }
}

extension Peer {
    /// Every revoked entry in id order (for persistence and listings).
    public mutating func revokedEntries() -> [RevokedEntry] { revoked.allEntries() }
}
