/// Membership: announce, heartbeat, suspicion, probes, refutation, goodbye, gossip and
/// push-pull anti-entropy (Protocol.md §3.1, §6.1).
extension Peer {
    // MARK: Beats

    /// Members alive or suspect, this peer included. Kept as a counter: recounting the view on
    /// every beat and gossip entry made a 1,000-node simulation cubic.
    public var liveCount: Int { liveMembers + 1 }

    /// Adds, replaces or removes a member, keeping the live counter exact.
    mutating func store(_ member: Member?, for id: NodeID) {
        if let old = members[id] {
            if old.isLive { liveMembers -= 1 }
            if byName[ByteString(old.name)] == id { byName[ByteString(old.name)] = nil }
            if old.status == .alive, let index = aliveIndex.removeValue(forKey: id) {
                // Swap-remove: order does not matter, picks are random.
                let last = aliveList.removeLast()
                if index < aliveList.count {
                    aliveList[index] = last
                    aliveIndex[last] = index
                }
            }
        }
        if let member {
            if member.isLive { liveMembers += 1 }
            byName[ByteString(member.name)] = id
            if member.status == .alive {
                aliveIndex[id] = aliveList.count
                aliveList.append(id)
            }
        }
        members[id] = member
    }

    /// Whether one more member may enter the view now (Protocol.md §6.6): the view has room
    /// (a dead or departed member makes room if needed) and the admission rate allows it.
    mutating func admitNewMember(now: Now) -> Bool {
        if members.count >= config.limits.members {
            let gone = members.values.filter { !$0.isLive }.min { ($0.statusSince, $0.id) < ($1.statusSince, $1.id) }
            guard let gone else {
                counters.drop("members_full")
                return false
            }
            store(nil, for: gone.id)
            gossipQueue[gone.id] = nil
        }
        guard admissions.hasTokens(now: now.nanos) else {
            counters.drop("admission_limited")
            return false
        }
        admissions.take(1, now: now.nanos)
        return true
    }

    func makeBeat(gossip: [MemberEntry]) -> Beat {
        Beat(intervalMillis: config.intervalMillis, memberCount: UInt16(clamping: liveCount),
            revoked: revoked.digest, gossip: gossip)
    }

    /// Takes up to `gossipPerBeat` queued changes, most-needed first, and counts them sent.
    mutating func takeGossip() -> [MemberEntry] {
        guard !gossipQueue.isEmpty else { return [] }
        // The most-needed entries first (ties by id), without sorting the whole queue.
        let picked = gossipQueue.smallest(config.gossipPerBeat) { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }
        var entries: [MemberEntry] = []
        for (id, left) in picked {
            if left <= 1 { gossipQueue[id] = nil } else { gossipQueue[id] = left - 1 }
            if let member = members[id] { entries.append(member.entry()) }
        }
        return entries
    }

    /// Queues a member's current state for piggybacking on the next beats, about 3·log2(N) times.
    mutating func enqueueGossip(_ id: NodeID) {
        var transmissions = 3
        var n = liveCount
        while n > 1 { transmissions += 3; n /= 2 }
        gossipQueue[id] = transmissions
    }

    mutating func sendAnnounce(now: Now, into actions: inout [Action]) {
        let beat = makeBeat(gossip: [])
        var destinations = beatDestinations()
        if config.multicast { destinations.append(contentsOf: config.seeds.map { .peer($0) }) }
        send(.announce(beat), to: destinations, into: &actions)
        announcesLeft -= 1
        // Repeats spread over ~100 ms with jitter so two peers started together still meet.
        let spread = UInt64.millis(30) * UInt64(config.announceCount - announcesLeft)
        nextAnnounceAt = now.nanos + spread + rng.next() % .millis(20)
    }

    mutating func sendHeartbeat(now: Now, into actions: inout [Action]) {
        send(.heartbeat(makeBeat(gossip: takeGossip())), to: beatDestinations(), into: &actions)
        nextBeatAt = now.nanos + config.heartbeatInterval
    }

    // MARK: Receiving

    /// Any datagram from a peer proves it alive at its header's incarnation.
    mutating func heardFrom(_ header: Header, at endpoint: Endpoint, intervalMillis: UInt32?, now: Now, into actions: inout [Action]) {
        let id = header.sender
        if var member = members[id] {
            member.lastHeard = now.nanos
            member.clock = max(member.clock, header.stamp)
            member.endpoint = endpoint
            if let intervalMillis { member.intervalMillis = Member.clampInterval(intervalMillis) }
            let revives: Bool
            switch member.status {
            case .alive: revives = false
            case .suspect: revives = header.incarnation >= member.incarnation
            case .dead, .left: revives = header.incarnation > member.incarnation
            }
            member.incarnation = max(member.incarnation, header.incarnation)
            members[id] = member
            if revives {
                setStatus(id, .alive, now: now, into: &actions)
            } else if !member.isLive, gossipQueue[id] == nil {
                // It talks, so it is not dead or gone, but only it can outbid the verdict: gossip
                // the verdict again so that it hears it and refutes (after a partition heals, or
                // after a GOODBYE forged in its name).
                enqueueGossip(id)
            }
            return
        }
        // A replaced id that still talks was no restart (two agents share a name, or a datagram
        // forged a "restart"): take it back beside the newer id and say so, rather than drop a
        // live member for good or flap between the two (Protocol.md §6.1.2).
        let wasReplaced = replaced.removeValue(forKey: id) != nil
        guard admitNewMember(now: now) else { return }
        reaped[id] = nil
        if wasReplaced {
            actions.append(.emit(.duplicateName(name: header.name, ids: [id] + (byName[ByteString(header.name)].map { [$0] } ?? []))))
        } else {
            replaceSameName(header.name, newID: id, address: endpoint.address, now: now, into: &actions)
        }
        store(Member(id: id, name: header.name, endpoint: endpoint, incarnation: header.incarnation,
            status: .alive, intervalMillis: Member.clampInterval(intervalMillis ?? config.intervalMillis), lastHeard: now.nanos,
            statusSince: now.nanos, clock: header.stamp), for: id)
        enqueueGossip(id)
        actions.append(.emit(.joined(name: header.name, id: id, endpoint: endpoint)))
        onMemberJoined(id, now: now, into: &actions)
    }

    /// A restarted agent (new boot id, same name, same host) replaces its old entry; the same
    /// name from another host is reported as a duplicate.
    private mutating func replaceSameName(_ name: String, newID: NodeID, address: UInt32, now: Now, into actions: inout [Action]) {
        guard let oldID = byName[ByteString(name)], oldID != newID, let old = members[oldID] else { return }
        if old.endpoint.address == address {
            store(nil, for: oldID)
            gossipQueue[oldID] = nil
            reaped[oldID] = now.nanos
            replaced[oldID] = now.nanos
            actions.append(.emit(.replaced(name: name, old: oldID, new: newID)))
        } else if old.isLive {
            actions.append(.emit(.duplicateName(name: name, ids: [oldID, newID])))
        }
    }

    mutating func onBeat(_ beat: Beat, header: Header, announce: Bool, replyTo: Endpoint, now: Now, into actions: inout [Action]) {
        let id = header.sender
        if var member = members[id] {
            member.revoked = beat.revoked
            member.digestMismatches = beat.revoked == revoked.digest ? 0 : min(member.digestMismatches, 1_000) + 1
            members[id] = member
        }
        for entry in beat.gossip { merge(entry, source: replyTo.address, now: now, into: &actions) }
        if announce {
            // Answer a newcomer at once, by unicast, so it learns of us before its start-up ends.
            send(.heartbeat(makeBeat(gossip: [])), to: .peer(replyTo), into: &actions)
            if !config.multicast { sendMembers(to: replyTo, replyWanted: false, into: &actions) }
        }
        maybeStartAntiEntropy(with: id, now: now, into: &actions)
    }

    mutating func onGoodbye(_ header: Header, now: Now, into actions: inout [Action]) {
        guard var member = members[header.sender], member.status != .left else { return }
        // A GOODBYE at the highest incarnation could never be refuted if forged (§6.1.3).
        guard header.incarnation < UInt32.max else {
            counters.drop("unrefutable")
            return
        }
        member.incarnation = max(member.incarnation, header.incarnation)
        members[header.sender] = member
        setStatus(header.sender, .left, now: now, into: &actions)
    }

    /// Applies one gossiped entry by the SWIM precedence rules (Protocol.md §6.1.3).
    mutating func merge(_ entry: MemberEntry, source: UInt32, now: Now, into actions: inout [Action]) {
        // A claim against a member at the highest incarnation could never be refuted (§6.1.3).
        if entry.status != .alive, entry.incarnation == UInt32.max {
            counters.drop("unrefutable")
            return
        }
        if entry.id == config.id {
            if entry.status != .alive, entry.incarnation >= incarnation { refute(claimedAt: entry.incarnation, now: now, into: &actions) }
            return
        }
        var entry = entry
        if entry.endpoint.address == 0 { entry.endpoint.address = source }
        entry.intervalMillis = Member.clampInterval(entry.intervalMillis)
        guard var member = members[entry.id] else {
            // Learn of a member second-hand only while it is live and not just reaped.
            guard entry.status.isLiveStatus, reaped[entry.id] == nil, replaced[entry.id] == nil, admitNewMember(now: now) else { return }
            store(Member(id: entry.id, name: entry.name, endpoint: entry.endpoint,
                incarnation: entry.incarnation, status: entry.status, intervalMillis: entry.intervalMillis,
                lastHeard: now.nanos, statusSince: now.nanos), for: entry.id)
            enqueueGossip(entry.id)
            actions.append(.emit(.joined(name: entry.name, id: entry.id, endpoint: entry.endpoint)))
            onMemberJoined(entry.id, now: now, into: &actions)
            return
        }
        let overrides: Bool
        switch entry.status {
        case .alive: overrides = entry.incarnation > member.incarnation
        case .suspect:
            overrides = (member.status == .alive && entry.incarnation >= member.incarnation)
                || (entry.incarnation > member.incarnation && member.status != .suspect)
        case .dead, .left:
            overrides = member.status.isLiveStatus && entry.incarnation >= member.incarnation
                || (entry.incarnation > member.incarnation)
        }
        guard overrides else { return }
        // A member we heard from directly within its interval is not taken for suspect on hearsay.
        if entry.status == .suspect, now.nanos &- member.lastHeard < member.interval { return }
        member.incarnation = entry.incarnation
        members[entry.id] = member
        if entry.status != member.status {
            setStatus(entry.id, entry.status, now: now, into: &actions)
            if entry.status == .suspect { startProbe(entry.id, now: now, into: &actions) }
        } else {
            enqueueGossip(entry.id)
        }
    }

    /// Someone claims this peer suspect, dead or left at `claimed`: outbid that with a higher
    /// incarnation. Claims at the highest incarnation are ignored by every receiver (§6.1.3), so
    /// there is always a higher one to take.
    mutating func refute(claimedAt claimed: UInt32, now: Now, into actions: inout [Action]) {
        guard claimed >= incarnation, claimed < UInt32.max, !stopped else { return }
        incarnation = claimed + 1
        actions.append(.emit(.refuted(incarnation: incarnation)))
        sendHeartbeat(now: now, into: &actions)
    }

    mutating func setStatus(_ id: NodeID, _ status: MemberStatus, now: Now, into actions: inout [Action]) {
        guard var member = members[id], member.status != status else { return }
        let old = member.status
        member.status = status
        member.statusSince = now.nanos
        if status == .alive { member.probe = nil; member.lastHeard = now.nanos }
        if !status.isLiveStatus { member.probe = nil }
        store(member, for: id)
        enqueueGossip(id)
        actions.append(.emit(.statusChanged(name: member.name, id: id, from: old, to: status)))
        if !status.isLiveStatus { onMemberGone(id, now: now, into: &actions) }
    }

    // MARK: Failure detection

    mutating func tickMembership(now: Now, into actions: inout [Action]) {
        if announcesLeft > 0, now.nanos >= nextAnnounceAt { sendAnnounce(now: now, into: &actions) }
        if now.nanos >= nextBeatAt { sendHeartbeat(now: now, into: &actions) }
        if now.nanos >= nextCheckAt { checkMembers(now: now, into: &actions) }
        if now.nanos >= nextPushPullAt { pushPull(now: now, into: &actions) }
        if now.nanos >= nextExpireAt {
            nextExpireAt = now.nanos + .millis(1_000)
            if revoked.expire(nowMillis: now.wallMillis) > 0 { actions.append(.stateChanged) }
            relays = relays.filter { $0.value.expires > now.nanos }
        }
    }

    /// One pass over the view: suspect the silent, probe the suspect, bury the unanswered, reap
    /// the long gone. The next pass is scheduled for the earliest moment anything can change.
    private mutating func checkMembers(now: Now, into actions: inout [Action]) {
        var next = now.nanos + config.heartbeatInterval
        for id in Array(members.keys) {
            guard let member = members[id] else { continue }
            switch member.status {
            case .alive:
                let due = member.lastHeard &+ member.interval * config.suspectAfterMissed
                if now.nanos >= due {
                    setStatus(id, .suspect, now: now, into: &actions)
                    startProbe(id, now: now, into: &actions)
                    if let probe = members[id]?.probe { next = min(next, probe.nextAt) }
                } else {
                    next = min(next, due)
                }
            case .suspect:
                guard var probe = member.probe else {
                    startProbe(id, now: now, into: &actions)
                    continue
                }
                if now.nanos >= probe.deadline {
                    setStatus(id, .dead, now: now, into: &actions)
                    continue
                }
                if now.nanos >= probe.nextAt {
                    probe.nextAt = now.nanos + config.probeInterval
                    members[id]?.probe = probe
                    send(.probe(Probe(probeID: probe.probeID, target: id)), to: .peer(member.endpoint), into: &actions)
                }
                next = min(next, probe.nextAt, probe.deadline)
            case .dead, .left:
                let due = member.statusSince &+ config.reapAfter
                if now.nanos >= due {
                    store(nil, for: id)
                    gossipQueue[id] = nil
                    reaped[id] = now.nanos
                    actions.append(.emit(.reaped(name: member.name, id: id)))
                } else {
                    next = min(next, due)
                }
            }
        }
        reaped = reaped.filter { now.nanos &- $0.value < config.reapAfter }
        replaced = replaced.filter { now.nanos &- $0.value < config.reapAfter }
        nextCheckAt = max(next, now.nanos + 1)
    }

    /// Probes a suspect directly and through up to `indirectProbes` other live members.
    mutating func startProbe(_ id: NodeID, now: Now, into actions: inout [Action]) {
        guard let member = members[id], member.status == .suspect, member.probe == nil else { return }
        let probeID = nextProbeID
        nextProbeID &+= 1
        members[id]?.probe = Member.ProbeState(probeID: probeID, nextAt: now.nanos + config.probeInterval,
            deadline: now.nanos + config.probeTimeout)
        send(.probe(Probe(probeID: probeID, target: id)), to: .peer(member.endpoint), into: &actions)
        // Helpers at random among the alive, in O(indirectProbes) whatever the size of the view.
        var picked: [Destination] = []
        var chosen: Set<NodeID> = []
        var tries = 0
        while picked.count < min(config.indirectProbes, aliveList.count), tries < config.indirectProbes * 4 {
            tries += 1
            let helper = aliveList[Int(rng.next() % UInt64(aliveList.count))]
            guard helper != id, chosen.insert(helper).inserted, let endpoint = members[helper]?.endpoint else { continue }
            picked.append(.peer(endpoint))
        }
        send(.probe(Probe(probeID: probeID, target: id)), to: picked, into: &actions)
        nextCheckAt = min(nextCheckAt, now.nanos + config.probeInterval)
    }

    mutating func onProbe(_ probe: Probe, header: Header, replyTo: Endpoint, now: Now, into actions: inout [Action]) {
        if config.faults.contains(.ignoreProbes) { return }
        if probe.target == config.id {
            send(.probeAck(probe), to: .peer(replyTo), into: &actions)
            return
        }
        // An indirect probe: ask the target ourselves and relay its answer.
        guard let target = members[probe.target], target.status != .dead, target.status != .left else { return }
        guard relays.count < config.limits.relays else {
            counters.drop("relays_full")
            return
        }
        let relayID = nextProbeID
        nextProbeID &+= 1
        relays[relayID] = (replyTo, probe.probeID, probe.target, now.nanos + config.probeTimeout)
        send(.probe(Probe(probeID: relayID, target: probe.target)), to: .peer(target.endpoint), into: &actions)
    }

    mutating func onProbeAck(_ ack: Probe, header: Header, now: Now, into actions: inout [Action]) {
        if let relay = relays.removeValue(forKey: ack.probeID), relay.target == ack.target {
            send(.probeAck(Probe(probeID: relay.probeID, target: ack.target)), to: .peer(relay.requester), into: &actions)
        }
        guard ack.target != header.sender, let member = members[ack.target], member.probe?.probeID == ack.probeID else { return }
        // Relayed proof of life: as good as hearing the member itself.
        members[ack.target]?.lastHeard = now.nanos
        setStatus(ack.target, .alive, now: now, into: &actions)
    }

    // MARK: Push-pull anti-entropy

    private mutating func pushPull(now: Now, into actions: inout [Action]) {
        nextPushPullAt = now.nanos + config.pushPullInterval
        let live = members.values.filter { $0.status == .alive }.map(\.id).sorted()
        if let pick = live.isEmpty ? nil : live[Int(rng.next() % UInt64(live.count))], let member = members[pick] {
            sendMembers(to: member.endpoint, replyWanted: true, into: &actions)
        } else if !config.seeds.isEmpty {
            for seed in config.seeds { send(.announce(makeBeat(gossip: [])), to: .peer(seed), into: &actions) }
        }
    }

    /// Sends this peer's whole view, self included, in as many MEMBERS pages as it takes.
    mutating func sendMembers(to endpoint: Endpoint, replyWanted: Bool, into actions: inout [Action]) {
        let me = MemberEntry(id: config.id, incarnation: incarnation, status: .alive,
            endpoint: Endpoint(address: 0, port: config.replyPort), intervalMillis: config.intervalMillis, name: config.name)
        let entries = [me] + members.values.sorted { $0.id < $1.id }.map { $0.entry() }
        let budget = Limits.maxDatagram - overhead - 4
        let pages = Self.paginate(entries, budget: budget, size: \.encodedSize, maxPerPage: 255)
        for (index, page) in pages.prefix(255).enumerated() {
            let payload = MembersPage(replyWanted: replyWanted, page: UInt8(index),
                pageCount: UInt8(min(pages.count, 255)), entries: page)
            send(.members(payload), to: .peer(endpoint), into: &actions)
        }
    }

    mutating func onMembersPage(_ page: MembersPage, header: Header, replyTo: Endpoint, now: Now, into actions: inout [Action]) {
        for entry in page.entries { merge(entry, source: replyTo.address, now: now, into: &actions) }
        if page.replyWanted, page.page == 0 { sendMembers(to: replyTo, replyWanted: false, into: &actions) }
    }

    /// Splits items into pages whose encoded sizes fit `budget`.
    static func paginate<T>(_ items: [T], budget: Int, size: (T) -> Int, maxPerPage: Int) -> [[T]] {
        var pages: [[T]] = []
        var current: [T] = []
        var used = 0
        for item in items {
            let itemSize = size(item)
            if !current.isEmpty, used + itemSize > budget || current.count >= maxPerPage {
                pages.append(current)
                current = []
                used = 0
            }
            current.append(item)
            used += itemSize
        }
        if !current.isEmpty || pages.isEmpty { pages.append(current) }
        return pages
    }
}

extension MemberStatus {
    var isLiveStatus: Bool { self == .alive || self == .suspect }
}
