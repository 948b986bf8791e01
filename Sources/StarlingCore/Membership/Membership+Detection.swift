/// Membership: the timer side of failure detection (Protocol.md §6.1) — this period's probe,
/// witness verdicts, relayed NACKs, suspicion timeouts, reaping and push-pull. Nothing here
/// walks the whole view: each due thing comes off a heap or the probe in flight.
extension Membership {
    /// Everything due at `now`. Returns the members that went away, for the other components.
    mutating func tick(now: Now, digest: SetDigest, out: inout Outbox) -> [MembershipChange] {
        if announcesLeft > 0, now.nanos >= nextAnnounceAt { sendAnnounce(now: now, digest: digest, out: &out) }
        probe(now: now, digest: digest, out: &out)
        if let at = refuteAgainAt, now.nanos >= at {
            refuteAgainAt = nil
            sendChange([ownEntry(incarnation: out.incarnation)], out: &out)
        }
        if ownEntryRepeats.map({ now.nanos >= $0.next }) == true { repeatOwnEntry(now: now, out: &out) }
        if now.nanos >= nextRelayAt { tickRelays(now: now, digest: digest, out: &out) }
        for due in deadlines.due(now: now.nanos) {
            switch due.kind {
            case .suspicion: suspicionRanOut(due.member, now: now, digest: digest, out: &out)
            case .reap: reap(due.member, now: now, out: &out)
            }
        }
        if now.nanos >= nextPushPullAt { pushPull(now: now, digest: digest, out: &out) }
        if now.nanos >= nextAskAt, !waiting.isEmpty || !asked.isEmpty { askWaiting(now: now, digest: digest, out: &out) }
        publishIfDue(now: now, out: &out)
        if now.nanos >= nextHousekeepingAt {
            nextHousekeepingAt = now.nanos.saturatingAdd(.millis(1_000))
            reaped = reaped.filter { now.nanos &- $0.value < config.reapAfter }
            replaced = replaced.filter { now.nanos &- $0.value < config.reapAfter }
            summarizePaths()
        }
        return takeChanges()
    }

    // MARK: Probing

    private mutating func probe(now: Now, digest: SetDigest, out: inout Outbox) {
        // Nothing due: no draw from the generator either, so that a tick for another timer
        // (a publication, §6.1.8) leaves the probe order and the helpers as they were.
        guard now.nanos >= probing.nextDeadline else { return }
        var helperRNG = SplitMix64(seed: rng.next())
        let steps: [Probing.Step]
        do {
            // Copies for the closures, let go before the view changes below (no copy on write).
            let (members, ring, me, alive) = (self.members, self.ring, config.id, aliveCount)
            steps = probing.tick(now: now.nanos, rng: &rng,
                endpoint: { id in members[id].flatMap { $0.isLive ? $0.endpoint : nil } },
                helpers: { count, target in
                    Self.helpers(count, for: target, members: members, ring: ring, me: me, alive: alive, rng: &helperRNG)
                })
        }
        for id in probing.takeDropped() {
            if members[id] != nil { members.modify(id) { $0.probeListed = false } } else { probeListedGone.remove(id) }
        }
        for step in steps {
            switch step {
            case .ping(let probeID, let target, let endpoint):
                notePing(to: target)
                sendPing(probeID: probeID, target: target, to: endpoint, digest: digest, out: &out)
            case .pingRequest(let probeID, let target, _, let helpers):
                out.send(.pingRequest(Probe(probeID: probeID, target: target)), to: helpers.map { .peer($0) })
            case .suspect(let id):
                accuse(id, now: now, out: &out)
            }
        }
    }

    /// Up to `count` members to ask to PING `target` (PING_REQ): at random among the alive, in
    /// O(count) draws whatever the size of the view.
    static func helpers(_ count: Int, for target: NodeID, members: MemberTable, ring: Ring, me: NodeID, alive: Int,
                        rng: inout SplitMix64) -> [Endpoint] {
        var picked: [Endpoint] = []
        var chosen: Set<NodeID> = []
        var tries = 0
        while picked.count < min(count, alive), tries < count * 4 {
            tries += 1
            guard let helper = ring.randomMember(excluding: me, target, tries: 1, rng: &rng),
                  chosen.insert(helper).inserted, let endpoint = members[helper]?.endpoint else { continue }
            picked.append(endpoint)
        }
        return picked
    }

    mutating func sendPing(probeID: UInt32, target: NodeID, to endpoint: Endpoint, digest: SetDigest, out: inout Outbox) {
        let piggyback = piggyback(first: target, incarnation: out.incarnation, overhead: out.membershipOverhead)
        out.send(.ping(Ping(probeID: probeID, target: target, revoked: digest, piggyback: piggyback)), to: [.peer(endpoint)],
            extensions: listedTags(onPiggyback: piggyback, overhead: out.membershipOverhead))
    }

    /// This peer's own probe of `id` went unanswered for a whole period. A member that came
    /// back from a suspicion within ``quietPeriods`` is accused by gossip alone (a quiet
    /// suspicion, §6.1.5): a node at 80 % loss is suspected and refuted over and over, and a
    /// multicast for each accusation made it cost every node 16.7 CHANGEs a second (2,000
    /// simulated peers). Confirmations and the death still go by multicast, so that a member
    /// that crashes right after a bad spell is found as fast as any other.
    private mutating func accuse(_ id: NodeID, now: Now, out: inout Outbox) {
        guard let member = members[id] else { return }
        switch member.status {
        case .alive:
            let quiet = member.revived && now.nanos &- member.statusSince < config.protocolPeriod.saturatingMultiplied(by: Self.quietPeriods)
                && !config.faults.contains(.loudAccusations)
            suspect(id, at: member.incarnation, by: config.id, accused: true, now: now, out: &out)
            if !quiet, let entry = members[id]?.entry() { sendChange([entry], out: &out) }
        case .suspect:
            // Someone accused first: this failed probe is one more independent confirmation,
            // multicast while the suspicion still wants confirmations (the witnesses may be
            // out of reach: in a partition, the far side's witnesses never hear the CHANGE).
            guard let held = suspicions[id], !held.accused, !held.witnessing,
                  held.suspicion.isShortOfConfirmations, !held.suspicion.confirmers.contains(config.id) else { return }
            confirm(id, by: config.id, now: now)
            sendChange([member.entry()], out: &out)
        case .dead, .left:
            break
        }
    }

    /// Marks a member suspect at `incarnation` and starts its suspicion timeout (Lifeguard):
    /// from the maximum, shrinking with confirmations; both scaled by local health.
    mutating func suspect(_ id: NodeID, at incarnation: UInt32, by suspector: NodeID, accused: Bool, now: Now, out: inout Outbox) {
        members.modify(id) { $0.incarnation = max($0.incarnation, incarnation) }
        setStatus(id, .suspect, now: now, out: &out)
        let bounds = Suspicion.bounds(members: liveCount, period: config.protocolPeriod,
            alpha: config.suspicionAlpha, beta: config.suspicionBeta)
        let suspicion = Suspicion(by: suspector, now: now.nanos, minimum: probing.health.scaled(bounds.minimum),
            maximum: probing.health.scaled(bounds.maximum), wanted: config.confirmationsWanted)
        suspicions[id] = Held(suspicion: suspicion, incarnation: members[id]?.incarnation ?? incarnation, accused: accused,
            accuser: suspector == id ? nil : suspector)
        deadlines.set(id, .suspicion, at: suspicion.deadline)
    }

    /// An independent confirmation of a suspicion this peer holds: its deadline may come closer.
    mutating func confirm(_ id: NodeID, by confirmer: NodeID, now: Now) {
        guard var held = suspicions[id], held.suspicion.confirm(by: confirmer) else { return }
        suspicions[id] = held
        deadlines.set(id, .suspicion, at: max(held.suspicion.deadline, now.nanos))
    }

    /// A suspicion ran out: the suspect first gets a last chance — a PING, again one ping
    /// timeout later, its suspicion first in the piggyback — and is dead only if neither is
    /// answered. Even with all its confirmations: a peer that missed both copies of the
    /// refutation holds a suspicion the member has answered, and its confirmations are of the
    /// old incarnation. Declaring those at once was the one path to a verdict on which no peer
    /// asked the suspect itself (at 5,000 simulated peers under 10 % loss, 4 verdicts about
    /// live members came by a path not recorded). A real failure costs up to three ping
    /// timeouts more (140 ms at the median, 2,000 simulated peers).
    private mutating func suspicionRanOut(_ id: NodeID, now: Now, digest: SetDigest, out: inout Outbox) {
        guard var held = suspicions[id], let member = members[id], member.status == .suspect else { return }
        if !held.lastChance {
            held.lastChance = true
            suspicions[id] = held
            let timeout = probing.health.scaled(config.pingTimeout)
            let verdictAt = now.nanos.saturatingAdd(timeout.saturatingMultiplied(by: 3))
            startRelay(Relay(requester: nil, probeID: 0, target: id, verdictAt: verdictAt, expires: verdictAt,
                lastChance: true, retryAt: now.nanos.saturatingAdd(timeout)), digest: digest, at: member.endpoint, out: &out)
            return
        }
        declareDead(id, now: now, out: &out)
    }

    /// A last chance's second PING goes with a PING_REQ to `indirectProbes` helpers when the
    /// suspicion is short of its confirmations: the direct path may be the lossy one. A peer
    /// that missed both copies of a refutation and the piggyback holds a suspicion nobody
    /// else confirms, and two PINGs both unanswered on one path at 10 % loss (about 1 in 28)
    /// made it declare a live member dead (1,000 simulated peers; §6.1.6). A suspicion with all
    /// its confirmations (a real failure, seen by the witnesses) asks nobody.
    private mutating func askHelpersLastChance(probeID: UInt32, target: NodeID, out: inout Outbox) {
        guard let held = suspicions[target], held.suspicion.isShortOfConfirmations else { return }
        var helperRNG = SplitMix64(seed: rng.next())
        let picked = Self.helpers(config.indirectProbes, for: target, members: members, ring: ring, me: config.id,
            alive: aliveCount, rng: &helperRNG)
        if !picked.isEmpty { out.send(.pingRequest(Probe(probeID: probeID, target: target)), to: picked.map { .peer($0) }) }
    }

    private mutating func declareDead(_ id: NodeID, now: Now, out: inout Outbox) {
        guard let held = suspicions[id], members[id]?.status == .suspect else { return }
        setStatus(id, .dead, now: now, out: &out)
        // Only the first accuser multicasts the death; every other peer timed it out alike.
        if held.accused, let entry = members[id]?.entry() { sendChange([entry], out: &out) }
    }

    private mutating func reap(_ id: NodeID, now: Now, out: inout Outbox) {
        guard let member = members[id], !member.isLive else { return }
        store(nil, for: id)
        reaped[id] = now.nanos
        // One never published leaves as it came, unseen (§6.1.8).
        if member.isPublished { out.emit(.reaped(name: member.name, id: id)) }
    }

    // MARK: Pings for others

    /// PINGs sent for a requester (helper) or as a witness: NACKs and witness verdicts due,
    /// expired entries dropped.
    private mutating func tickRelays(now: Now, digest: SetDigest, out: inout Outbox) {
        var next = UInt64.max
        // By probe id, not in the dictionary's order (seeded per process): what this sends must
        // go out in the same order in every run.
        for probeID in relays.keys.sorted() {
            guard let relay = relays[probeID] else { continue }
            // A last chance belongs to the suspicion that ran out: one refuted since (by a
            // multicast, not the ACK) and suspected anew is not asked about, nor killed, by it.
            let current = !relay.lastChance || suspicions[relay.target]?.lastChance == true
            if let at = relay.retryAt, now.nanos >= at {
                relays[probeID]?.retryAt = nil
                if current, let member = members[relay.target], member.status == .suspect {
                    sendPing(probeID: probeID, target: relay.target, to: member.endpoint, digest: digest, out: &out)
                    if relay.lastChance { askHelpersLastChance(probeID: probeID, target: relay.target, out: &out) }
                }
            }
            if let at = relay.verdictAt, now.nanos >= at {
                relays[probeID]?.verdictAt = nil
                if let requester = relay.requester {
                    out.send(.nack(Probe(probeID: relay.probeID, target: relay.target)), to: .peer(requester))
                } else if relay.lastChance {
                    if current { declareDead(relay.target, now: now, out: &out) }
                } else {
                    witnessFailed(relay.target, check: probeID, now: now, out: &out)
                }
            }
            if now.nanos >= relay.expires {
                relays[probeID] = nil
                continue
            }
            next = min(next, relays[probeID]?.nextDue ?? relay.expires)
        }
        nextRelayAt = next
    }

    /// Starts a PING for someone else; returns its probe id, nil when the relay table is full.
    /// Last chances are not counted against its bound: PING_REQs from anyone can fill the
    /// table, and a suspicion that ran out must not lose its check to them. They are bounded
    /// apart, one per member (a newer one replaces the older), each living three ping
    /// timeouts (§6.6).
    @discardableResult
    mutating func startRelay(_ relay: Relay, digest: SetDigest, at endpoint: Endpoint, out: inout Outbox) -> UInt32? {
        if relay.lastChance {
            // At most one last chance per member is held, so this finds that one or none.
            if let older = relays.first(where: { $0.value.lastChance && $0.value.target == relay.target })?.key { relays[older] = nil }
        } else if relays.count >= config.limits.relays, relays.values.count(where: { !$0.lastChance }) >= config.limits.relays {
            out.drop("relays_full")
            return nil
        }
        // Upper half of the probe-id space (see ``Probing/maxProbeID``).
        nextRelayID = nextRelayID &+ 1
        let probeID = 0x8000_0000 | nextRelayID
        relays[probeID] = relay
        nextRelayAt = min(nextRelayAt, relay.nextDue)
        sendPing(probeID: probeID, target: relay.target, to: endpoint, digest: digest, out: &out)
        return probeID
    }

    /// A witness could not reach the suspect either: it confirms in its own name, by multicast,
    /// once: not when its failed probe confirmed the suspicion already, nor for a newer
    /// suspicion than the one its `check` was started for (the member refuted, or was revived,
    /// and was suspected again before this verdict was due): that one is confirmed by its own
    /// check, if this peer is its witness, or not by this peer's check at all.
    /// A check made because of a CHANGE(dead) heard first-hand confirms here only, unless this
    /// peer is one of the suspect's witnesses (whose CHANGE counts as a confirmation elsewhere,
    /// §6.1.6): the whole group heard that death, and each peer that held the member alive
    /// checks it itself. Their multicasts grew faster than n: at 5,000 simulated peers with 1 %
    /// at 80 % loss they were 674 of 2,531 CHANGEs sent by healthy peers (9 of 720 at 2,000).
    private mutating func witnessFailed(_ id: NodeID, check: UInt32, now: Now, out: inout Outbox) {
        guard let member = members[id], member.status == .suspect, let held = suspicions[id], held.check == check,
              !held.suspicion.confirmers.contains(config.id) else { return }
        confirm(id, by: config.id, now: now)
        if held.deathHeard, !config.faults.contains(.loudDeathChecks),
           !witnesses(of: id, accuser: held.accuser).contains(config.id) { return }
        sendChange([member.entry()], out: &out)
    }

    // MARK: Push-pull anti-entropy

    private mutating func pushPull(now: Now, digest: SetDigest, out: inout Outbox) {
        nextPushPullAt = now.nanos.saturatingAdd(pushPullInterval)
        // A member held dead may be alive behind a partition that healed: nothing else would
        // reach it (no one probes the dead), so one of them also gets the slice, which tells it
        // it is held dead (it refutes by multicast) and asks for its view (Serf's reconnect).
        // Counted, so that a view without dead members is not scanned every period.
        let dead = deadMembers > 0 ? members.values.filter { $0.status == .dead } : []
        if !dead.isEmpty {
            sendSlice(to: dead[Int(rng.next() % UInt64(dead.count))].endpoint, replyWanted: true, out: &out)
        }
        if aliveCount > 0 {
            if let pick = ring.randomMember(excluding: config.id, tries: 8, rng: &rng), let member = members[pick] {
                sendSlice(to: member.endpoint, replyWanted: true, out: &out)
            }
        } else if !config.seeds.isEmpty {
            let announcement = Announcement(memberCount: UInt16(clamping: liveCount), revoked: digest)
            for seed in config.seeds { out.send(.announce(announcement), to: .peer(seed)) }
        }
    }

    /// Push-pull sends a bounded slice of the view, not all of it (Protocol.md §6.1): this
    /// peer, then every verdict it holds (suspect, dead, left: what a peer that missed a CHANGE
    /// needs), then alive members from a window that moves along the shuffled probe order, so
    /// that every member is exchanged in turn. At 10,000 members a whole view is 255 pages;
    /// a slice is at most ``pushPullEntries`` entries, so anti-entropy costs the same at any size.
    mutating func sendSlice(to endpoint: Endpoint, replyWanted: Bool, out: inout Outbox) {
        var entries = [ownEntry(incarnation: out.incarnation)]
        let limit = Self.pushPullEntries
        for member in members.values where member.status != .alive && entries.count < limit { entries.append(member.entry()) }
        let order = probing.order.order
        var taken = 0
        while entries.count < limit, taken < order.count {
            let id = order[(pushPullCursor &+ taken) % order.count]
            taken += 1
            if let member = members[id], member.status == .alive { entries.append(member.entry()) }
        }
        pushPullCursor = order.isEmpty ? 0 : (pushPullCursor &+ taken) % order.count
        sendPages(entries, to: endpoint, replyWanted: replyWanted, out: &out)
    }

    /// Answers a MEMBERS page whose sender is behind: for every entry at an incarnation below
    /// the one this peer holds, this peer's own entry, in one MEMBERS sequence (reply_wanted 0;
    /// §6.1.4). A peer back from loss holding a member dead at an incarnation the member has
    /// refuted since is told at its next push-pull, where its partner ignored the stale verdict
    /// and it stayed wrong until the member's own round robin reached it (2,000 simulated
    /// peers: views still apart 30 s after 80 % loss ended). Our records only go up, so the
    /// sender, once it merged the answer, has nothing to correct back.
    mutating func correctStaleEntries(_ entries: [MemberEntry], to endpoint: Endpoint, out: inout Outbox) {
        let fresher = entries.compactMap { entry -> MemberEntry? in
            guard entry.id != config.id, let member = members[entry.id], member.incarnation > entry.incarnation else { return nil }
            return member.entry()
        }
        if !fresher.isEmpty { sendPages(fresher, to: endpoint, replyWanted: false, out: &out) }
    }

    /// Entries in one push-pull slice: four pages of members with 30-byte names.
    static let pushPullEntries = 120

    /// Sends this peer's whole view, self included (the answer to a newcomer's ANNOUNCE), in
    /// the table's order: sorting the view for every answer cost about as much as encoding it
    /// (this function took 15.5 % of a simulated 1,000-node cold start with the sort, 8.7 %
    /// without, in two perf profiles). When the view needs more than 255 pages (about 9,000 members),
    /// responder `share.index` of `share.of` sends only its part of the members in id order, so
    /// that the responders together send all of it (Protocol.md §6.1.2); beyond 255 pages a
    /// part is cut.
    func sendMembers(to endpoint: Endpoint, replyWanted: Bool, share: (index: Int, of: Int)? = nil, out: inout Outbox) {
        let own = ownEntry(incarnation: out.incarnation)
        var entries = [own]
        // Beyond 255 pages the view is split, and only this peer's part is built: counted
        // first, a view of 10,000 was paged whole by each of a newcomer's three responders
        // before each kept its third.
        if let share, share.of > 1, share.index >= 0, share.index < share.of, pageCount(own, members.values.lazy.map { $0.entry() }, out: out) > 255 {
            // Split by the id space, not by rank in this view: responders' views differ during
            // a cold start, and ranks cut at different ids left members in no part (§6.1.2).
            for member in members.values where Self.part(of: member.id, parts: share.of) == share.index { entries.append(member.entry()) }
        } else {
            entries.reserveCapacity(members.count + 1)
            for member in members.values { entries.append(member.entry()) }
        }
        send(pages(entries, out: out), to: endpoint, replyWanted: replyWanted, out: &out)
    }

    /// Which of `parts` equal ranges of the id space holds `id`, by its first 8 bytes (§6.1.2).
    static func part(of id: NodeID, parts: Int) -> Int {
        Int(truncatingIfNeeded: id.high.multipliedFullWidth(by: UInt64(max(1, parts))).high)
    }

    func sendPages(_ entries: [MemberEntry], to endpoint: Endpoint, replyWanted: Bool, out: inout Outbox) {
        send(pages(entries, out: out), to: endpoint, replyWanted: replyWanted, out: &out)
    }

    /// Sends a MEMBERS sequence already cut into pages; beyond 255 pages it is cut.
    private func send(_ pages: [[MemberEntry]], to endpoint: Endpoint, replyWanted: Bool, out: inout Outbox) {
        for (index, page) in pages.prefix(255).enumerated() {
            let payload = MembersPage(replyWanted: replyWanted, page: UInt8(index),
                pageCount: UInt8(min(pages.count, 255)), entries: page)
            out.send(.members(payload), to: [.peer(endpoint)], extensions: listedTags(on: page))
        }
    }
}
