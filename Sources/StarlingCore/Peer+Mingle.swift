/// Mingle (join sync) and revoked-set anti-entropy (Protocol.md §3.2, §6.3).
public struct MingleState: Sendable {
    enum Phase: Sendable { case idle, searching, done }
    var phase: Phase = .idle
    var requestID: UInt32 = 0
    var startedAt: UInt64 = 0
    var helloSends = 0
    var nextHelloAt: UInt64 = 0
    var aloneAt: UInt64 = 0
    var deadline: UInt64 = 0
    var repliers: [NodeID: (endpoint: Endpoint, digest: SetDigest)] = [:]
    var expected = 0
    var received = 0
    var triedServers: Set<NodeID> = []

    var nextWake: UInt64? { phase == .searching ? min(nextHelloAt, aloneAt, deadline) : nil }
}

/// One pull of revoked entries from one peer: digest first (unless everything is wanted), then
/// bursts of pages, each resumed from the last contiguous page after a loss.
public struct SyncSession: Sendable {
    var peer: NodeID
    var endpoint: Endpoint
    var forMingle: Bool
    var digestRequestID: UInt32?
    var mask: UInt64 = 0
    var cursor = ""
    var burstID: UInt32 = 0
    var burstPages: [UInt8: String] = [:]
    var burstLast: UInt8?
    var retryAt: UInt64
    var hardDeadline: UInt64
    var stalls = 0
    var received = 0
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

    mutating func onHello(_ hello: Hello, header: Header, replyTo: Endpoint, into actions: inout [Action]) {
        let others = members.values.filter { $0.isLive && $0.id != header.sender }
        let sample = others.sorted { $0.id < $1.id }.prefix(8).map { $0.entry() }
        let reply = HelloReply(requestID: hello.requestID, memberCount: UInt16(clamping: others.count + 1),
            revoked: revoked.digest, members: Array(sample))
        send(.helloReply(reply), to: .peer(replyTo), into: &actions)
    }

    mutating func onHelloReply(_ reply: HelloReply, header: Header, replyTo: Endpoint, now: Now, into actions: inout [Action]) {
        for entry in reply.members { merge(entry, source: replyTo.address, now: now, into: &actions) }
        guard mingle.phase == .searching, reply.requestID == mingle.requestID else { return }
        mingle.repliers[header.sender] = (replyTo, reply.revoked)
        mingle.expected = max(mingle.expected, Int(reply.memberCount))
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
        if heard > 0, heard >= mingle.expected {
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
            sync = session
            requestBurst(now: now, into: &actions)
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
        session.mask = revoked.differingBuckets(from: reply.buckets)
        sync = session
        if session.mask == 0 {
            endSync(now: now, into: &actions)
        } else {
            requestBurst(now: now, into: &actions)
        }
    }

    private mutating func requestBurst(now: Now, into actions: inout [Action]) {
        guard var session = sync else { return }
        session.burstID = newRequestID()
        session.burstPages = [:]
        session.burstLast = nil
        session.retryAt = now.nanos + config.pageTimeout
        sync = session
        let request = PageRequest(requestID: session.burstID, bucketMask: session.mask, maxPages: config.pageBurst, cursor: session.cursor)
        send(.pageRequest(request), to: .peer(session.endpoint), into: &actions)
    }

    /// Serves up to `maxPages` pages after the cursor, back to back.
    mutating func onPageRequest(_ request: PageRequest, replyTo: Endpoint, into actions: inout [Action]) {
        let budget = Limits.maxDatagram - overhead - 8
        var cursor = request.cursor
        for index in 0..<request.maxPages {
            let (entries, last) = revoked.page(after: cursor, mask: request.bucketMask, budget: budget)
            send(.page(RevokedPage(requestID: request.requestID, index: index, last: last, entries: entries)), to: .peer(replyTo), into: &actions)
            if last { break }
            cursor = entries.last?.id ?? cursor
        }
    }

    mutating func onPage(_ page: RevokedPage, header: Header, now: Now, into actions: inout [Action]) {
        guard var session = sync, session.peer == header.sender, page.requestID == session.burstID else { return }
        var added = 0
        for entry in page.entries where revoked.insert(entry.id, revokedAtMillis: entry.revokedAtMillis, nowMillis: now.wallMillis) {
            added += 1
        }
        if added > 0 { actions.append(.stateChanged) }
        session.received += added
        if session.forMingle { mingle.received += added }
        session.burstPages[page.index] = page.entries.last?.id ?? ""
        if page.last { session.burstLast = page.index }
        session.retryAt = now.nanos + config.pageTimeout
        session.stalls = 0
        sync = session
        let final = session.burstLast ?? (config.pageBurst - 1)
        if page.index == final || session.burstPages.count > Int(final) { advance(now: now, into: &actions) }
    }

    /// Moves the cursor over the contiguous pages received, then finishes or asks for more.
    private mutating func advance(now: Now, into actions: inout [Action]) {
        guard var session = sync else { return }
        var index: UInt8 = 0
        var complete = false
        while let lastID = session.burstPages[index] {
            if !lastID.isEmpty { session.cursor = lastID }
            if session.burstLast == index { complete = true; break }
            if index == UInt8.max { break }
            index += 1
        }
        sync = session
        if complete { endSync(now: now, into: &actions) } else { requestBurst(now: now, into: &actions) }
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
        sync = session
        if let requestID = session.digestRequestID {
            sync!.retryAt = now.nanos + config.pageTimeout
            send(.digestRequest(requestID: requestID), to: .peer(session.endpoint), into: &actions)
        } else if session.burstPages.isEmpty {
            requestBurst(now: now, into: &actions)
        } else {
            advance(now: now, into: &actions)
        }
    }

    /// A member whose beats keep showing a different digest gets its differences pulled.
    mutating func maybeStartAntiEntropy(with id: NodeID, now: Now, into actions: inout [Action]) {
        guard sync == nil, mingle.phase == .done, let member = members[id], member.status == .alive,
            member.digestMismatches >= 2, (syncCooldown[id] ?? 0) <= now.nanos
        else { return }
        members[id]!.digestMismatches = 0
        startSync(with: id, at: member.endpoint, forMingle: false, now: now, into: &actions)
    }

    /// Stores ids revoked here (by a command or the embedding API) at the current wall time.
    mutating func storeRevoked(_ ids: [String], by: String, now: Now, into actions: inout [Action]) -> Int {
        var stored = 0
        for id in ids where Limits.revokedIDBytes.contains(id.utf8.count) {
            if revoked.insert(id, revokedAtMillis: now.wallMillis, nowMillis: now.wallMillis) || revoked.contains(id) { stored += 1 }
        }
        actions.append(.stateChanged)
        actions.append(.emit(.revoked(ids: ids, by: by)))
        return stored
    }
}

extension Peer {
    /// Every revoked entry in id order (for persistence and listings).
    public mutating func revokedEntries() -> [RevokedEntry] { revoked.allEntries() }
}
