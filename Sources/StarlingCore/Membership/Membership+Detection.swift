/// Membership: failure detection, probes and push-pull anti-entropy (Protocol.md §6.1).
extension Membership {
    /// Announces and beats that are due.
    mutating func tickBeats(now: Now, digest: SetDigest, out: inout Outbox) {
        if announcesLeft > 0, now.nanos >= nextAnnounceAt { sendAnnounce(now: now, digest: digest, out: &out) }
        if now.nanos >= nextBeatAt { sendHeartbeat(now: now, digest: digest, out: &out) }
    }

    /// Push-pull and the expiry of relays, when due (after the check pass).
    mutating func tickPushPull(now: Now, digest: SetDigest, out: inout Outbox) {
        if now.nanos >= nextPushPullAt { pushPull(now: now, digest: digest, out: &out) }
        if now.nanos >= nextRelayExpiryAt {
            nextRelayExpiryAt = now.nanos + .millis(1_000)
            relays = relays.filter { $0.value.expires > now.nanos }
        }
    }

    // MARK: The check pass

    /// One pass over the view: suspect the silent, probe the suspect, bury the unanswered, reap
    /// the long gone. It runs member by member (``check(_:in:now:out:)``) so that each member's
    /// change reaches the other components before the next member is looked at.
    struct CheckPass: Sendable {
        let ids: [NodeID]
        /// The earliest moment anything can change.
        var next: UInt64
    }

    /// The pass to run now, or nil when none is due.
    func checkPass(now: Now) -> CheckPass? {
        guard now.nanos >= nextCheckAt else { return nil }
        return CheckPass(ids: Array(members.keys), next: now.nanos + config.heartbeatInterval)
    }

    mutating func check(_ id: NodeID, in pass: inout CheckPass, now: Now, out: inout Outbox) -> [MembershipChange] {
        guard let member = members[id] else { return [] }
        switch member.status {
        case .alive:
            let due = member.lastHeard &+ member.interval * config.suspectAfterMissed
            if now.nanos >= due {
                setStatus(id, .suspect, now: now, out: &out)
                startProbe(id, now: now, out: &out)
                if let probe = members[id]?.probe { pass.next = min(pass.next, probe.nextAt) }
            } else {
                pass.next = min(pass.next, due)
            }
        case .suspect:
            guard var probe = member.probe else {
                startProbe(id, now: now, out: &out)
                return []
            }
            if now.nanos >= probe.deadline {
                setStatus(id, .dead, now: now, out: &out)
                return takeChanges()
            }
            if now.nanos >= probe.nextAt {
                probe.nextAt = now.nanos + config.probeInterval
                members.modify(id) { $0.probe = probe }
                out.send(.probe(Probe(probeID: probe.probeID, target: id)), to: .peer(member.endpoint))
            }
            pass.next = min(pass.next, probe.nextAt, probe.deadline)
        case .dead, .left:
            let due = member.statusSince &+ config.reapAfter
            if now.nanos >= due {
                store(nil, for: id)
                gossipQueue[id] = nil
                reaped[id] = now.nanos
                out.emit(.reaped(name: member.name, id: id))
            } else {
                pass.next = min(pass.next, due)
            }
        }
        return []
    }

    mutating func finish(_ pass: CheckPass, now: Now) {
        reaped = reaped.filter { now.nanos &- $0.value < config.reapAfter }
        replaced = replaced.filter { now.nanos &- $0.value < config.reapAfter }
        nextCheckAt = max(pass.next, now.nanos + 1)
    }

    // MARK: Probes

    /// Probes a suspect directly and through up to `indirectProbes` other live members.
    mutating func startProbe(_ id: NodeID, now: Now, out: inout Outbox) {
        guard let member = members[id], member.status == .suspect, member.probe == nil else { return }
        let probeID = nextProbeID
        nextProbeID &+= 1
        members.modify(id) { $0.probe = Member.ProbeState(probeID: probeID, nextAt: now.nanos + config.probeInterval, deadline: now.nanos + config.probeTimeout) }
        out.send(.probe(Probe(probeID: probeID, target: id)), to: .peer(member.endpoint))
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
        out.send(.probe(Probe(probeID: probeID, target: id)), to: picked)
        nextCheckAt = min(nextCheckAt, now.nanos + config.probeInterval)
    }

    mutating func onProbe(_ probe: Probe, replyTo: Endpoint, now: Now, out: inout Outbox) {
        if config.faults.contains(.ignoreProbes) { return }
        if probe.target == config.id {
            out.send(.probeAck(probe), to: .peer(replyTo))
            return
        }
        // An indirect probe: ask the target ourselves and relay its answer.
        guard let target = members[probe.target], target.status != .dead, target.status != .left else { return }
        guard relays.count < config.limits.relays else {
            out.drop("relays_full")
            return
        }
        let relayID = nextProbeID
        nextProbeID &+= 1
        relays[relayID] = Relay(requester: replyTo, probeID: probe.probeID, target: probe.target, expires: now.nanos + config.probeTimeout)
        out.send(.probe(Probe(probeID: relayID, target: probe.target)), to: .peer(target.endpoint))
    }

    mutating func onProbeAck(_ ack: Probe, header: Header, now: Now, out: inout Outbox) {
        if let relay = relays.removeValue(forKey: ack.probeID), relay.target == ack.target {
            out.send(.probeAck(Probe(probeID: relay.probeID, target: ack.target)), to: .peer(relay.requester))
        }
        guard ack.target != header.sender, let member = members[ack.target], member.probe?.probeID == ack.probeID else { return }
        // Relayed proof of life: as good as hearing the member itself.
        members.modify(ack.target) { $0.lastHeard = now.nanos }
        setStatus(ack.target, .alive, now: now, out: &out)
    }

    // MARK: Push-pull anti-entropy

    private mutating func pushPull(now: Now, digest: SetDigest, out: inout Outbox) {
        nextPushPullAt = now.nanos + config.pushPullInterval
        let live = members.values.filter { $0.status == .alive }.map(\.id).sorted()
        if let pick = live.isEmpty ? nil : live[Int(rng.next() % UInt64(live.count))], let member = members[pick] {
            sendMembers(to: member.endpoint, replyWanted: true, out: &out)
        } else if !config.seeds.isEmpty {
            for seed in config.seeds { out.send(.announce(makeBeat(gossip: [], digest: digest)), to: .peer(seed)) }
        }
    }

    /// Sends this peer's whole view, self included, in as many MEMBERS pages as it takes.
    func sendMembers(to endpoint: Endpoint, replyWanted: Bool, out: inout Outbox) {
        let me = MemberEntry(id: config.id, incarnation: out.incarnation, status: .alive,
            endpoint: Endpoint(address: 0, port: config.replyPort), intervalMillis: config.intervalMillis, name: config.name)
        let entries = [me] + members.values.sorted { $0.id < $1.id }.map { $0.entry() }
        let budget = Limits.maxDatagram - out.overhead - 4
        let pages = paginate(entries, budget: budget, maxPerPage: 255, size: \.encodedSize)
        for (index, page) in pages.prefix(255).enumerated() {
            let payload = MembersPage(replyWanted: replyWanted, page: UInt8(index),
                pageCount: UInt8(min(pages.count, 255)), entries: page)
            out.send(.members(payload), to: .peer(endpoint))
        }
    }
}
