/// Membership: what other peers' datagrams tell (Protocol.md §6.1.1–§6.1.3).
extension Membership {
    /// Any datagram from a peer proves it alive at its header's incarnation.
    /// `tags`: what the datagram carried of the sender's own tags (nil for a type that carries none).
    /// `type`: the datagram's. A view answer (MEMBERS or HELLO_REPLY) ends this peer's ANNOUNCE
    /// repeats (§6.1.2), and while this peer joins its sender is admitted without the rate, as
    /// the entries it carries are (§6.6): in a cold start a joiner spends its burst on the
    /// ANNOUNCEs of other newcomers, and then dropped its responders' answers whole because
    /// their senders were refused. Of 200 simulated peers with a cut rate, one such joiner
    /// learned of a member only 20 s later.
    mutating func heardFrom(_ header: Header, at endpoint: Endpoint, tags: MemberTags?, type: MessageType, now: Now, digest: SetDigest, out: inout Outbox) {
        let id = header.sender
        let viewAnswer = type == .members || type == .helloReply
        if viewAnswer { endAnnounceRepeats(now: now) }
        let heard = members.update(id) { member in
            member.lastHeard = now.nanos
            member.clock = max(member.clock, header.stamp)
            member.endpoint = endpoint
            let revives: Bool
            switch member.status {
            case .alive: revives = false
            case .suspect: revives = header.incarnation >= member.incarnation
            case .dead, .left: revives = header.incarnation > member.incarnation
            }
            member.incarnation = max(member.incarnation, header.incarnation)
            return (revives: revives, live: member.isLive)
        }
        if let heard {
            if heard.revives {
                setStatus(id, .alive, now: now, out: &out)
            } else if !heard.live {
                // It talks, so it is not dead or gone (after a partition heals, or after a
                // GOODBYE forged in its name).
                tellOfVerdict(id, at: endpoint, digest: digest, out: &out)
            }
            return
        }
        // A replaced id that still talks was no restart (two agents share a name, or a datagram
        // forged a "restart"): take it back beside the newer id and say so, rather than drop a
        // live member for good or flap between the two (Protocol.md §6.1.2).
        let wasReplaced = replaced.removeValue(forKey: id) != nil
        guard admitNewMember(id, at: endpoint, now: now, rated: !(viewAnswer && isJoining(now: now)), out: &out) else { return }
        reaped[id] = nil
        var replacing = false
        if wasReplaced {
            out.emit(.duplicateName(name: header.name, ids: [id] + (members.latest(named: header.name).map { [$0] } ?? [])))
        } else {
            replacing = replaceSameName(header.name, newID: id, address: endpoint.ip, now: now, out: &out)
        }
        store(Member(id: id, name: header.name, endpoint: endpoint, incarnation: header.incarnation,
            status: .alive, lastHeard: now.nanos, statusSince: now.nanos, clock: header.stamp), for: id)
        if type == .announce, now.nanos < greetUntil { greet(id, at: endpoint, digest: digest, out: &out) }
        disseminate(id, out: &out)
        // Its tags come with it, so that `joined` shows them (Serf's member-join does).
        let known = tags ?? .empty
        if !known.isEmpty { tagRecords[id] = TagRecord(incarnation: header.incarnation, tags: known) }
        // A restart takes its old entry's place in the published view at once: the view does not grow.
        newcomer(id, now: now, publishNow: replacing, out: &out)
    }

    /// A newcomer admitted by its ANNOUNCE in this peer's first 200 ms may have started after
    /// this peer's first ANNOUNCE, whose repeats end once answered: it gets a PING (probe id 0),
    /// at most ``Membership/greetings`` per start (§6.6), so that it hears of this peer. Not
    /// from one of its responders: their answer carries them. Sent before the newcomer's own
    /// entry is queued, which would lead the PING's piggyback and tell it only of itself.
    /// Only admitted ones (each paid an admission token): one forged multicast cannot make
    /// every young peer PING the address it names.
    private mutating func greet(_ id: NodeID, at endpoint: Endpoint, digest: SetDigest, out: inout Outbox) {
        guard owedAnswer(to: id) == nil else { return }
        guard greetsLeft > 0 else { return out.drop("greetings_spent") }
        greetsLeft -= 1
        sendPing(probeID: 0, target: id, to: endpoint, digest: digest, out: &out)
    }

    /// Only a member can outbid a verdict about itself at its incarnation: tell it at once,
    /// first on a PING (probe id 0), and gossip the verdict again, so that it refutes. Once per
    /// spell of the verdict in the queue: neither a talker nor hearsay can make this peer ping
    /// on and on (§6.1.3).
    private mutating func tellOfVerdict(_ id: NodeID, at endpoint: Endpoint, digest: SetDigest, out: inout Outbox) {
        guard dissemination.pending[id] == nil else { return }
        disseminate(id, out: &out)
        sendPing(probeID: 0, target: id, to: endpoint, digest: digest, out: &out)
    }

    /// A restarted agent (new boot id, same name, same host) replaces its old entry; the same
    /// name from another host is reported as a duplicate.
    /// Returns whether it replaced a published member.
    private mutating func replaceSameName(_ name: String, newID: NodeID, address: IPAddress, now: Now, out: inout Outbox) -> Bool {
        guard let oldID = members.latest(named: name), oldID != newID, let old = members[oldID] else { return false }
        if old.endpoint.ip == address {
            if old.isLive { changes.append(.gone(oldID)) }
            store(nil, for: oldID)
            reaped[oldID] = now.nanos
            replaced[oldID] = now.nanos
            // One never published leaves unseen; its successor joins with the next batch (§6.1.8).
            if old.isPublished { out.emit(.replaced(name: name, old: oldID, new: newID)) }
            return old.isPublished
        } else if old.isLive {
            out.emit(.duplicateName(name: name, ids: [oldID, newID]))
        }
        return false
    }

    /// Notes the revoked-set digest a member's PING or ACK carries (`digest` is this peer's own).
    mutating func noteDigest(_ revoked: SetDigest, from id: NodeID, digest: SetDigest) {
        members.modify(id) { member in
            member.digestMismatches = revoked == digest ? 0 : min(member.digestMismatches, 30) + 1
        }
    }

    /// The endpoint of `id` when its digests differed twice in a row while it is alive: its
    /// differences are worth pulling. The count starts again.
    mutating func takeDiverged(_ id: NodeID) -> Endpoint? {
        guard let member = members[id], member.status == .alive, member.digestMismatches >= 2 else { return nil }
        members.modify(id) { $0.digestMismatches = 0 }
        return member.endpoint
    }

    /// A newcomer's ANNOUNCE is answered with the whole view by its responders only
    /// (``responders(for:)``); a view too large for one MEMBERS sequence is split among them.
    /// `counted`: the live members the ANNOUNCE says its sender holds (nil for an answer held
    /// back in the waiting room, always sent). `owed`: the answer this peer owed when the
    /// ANNOUNCE came (it refused it for the rate), whatever the ring says now.
    mutating func answerAnnounce(from sender: NodeID, counted: UInt16? = nil, owed: WaitingRoom.OwedAnswer? = nil, replyTo: Endpoint, now: Now, out: inout Outbox) {
        guard let answer = owed ?? owedAnswer(to: sender) else { return }
        let answered = viewUpdates.contains { $0.newcomer == sender }
        // A repeat from a newcomer this peer answered, which already counts as many live
        // members as this view: the answers reached it, and another copy of the whole view
        // (three responders, three ANNOUNCEs) would only crowd its socket buffer (§6.1.2).
        if answered, let counted, Int(counted) >= liveCount { return }
        sendMembers(to: replyTo, replyWanted: false, share: answer.share, out: &out)
        // The pending update already covers what came since the first answer.
        if !answered { scheduleViewUpdate(for: sender, at: replyTo, now: now, out: &out) }
    }

    // MARK: Probes

    mutating func onPing(_ ping: Ping, from sender: NodeID, replyTo: Endpoint, now: Now, digest: SetDigest, out: inout Outbox) -> [MembershipChange] {
        noteDigest(ping.revoked, from: sender, digest: digest)
        mergeAll(ping.piggyback, source: replyTo.ip, now: now, digest: digest, out: &out)
        answerPing(ping, first: sender, replyTo: replyTo, digest: digest, out: &out)
        return takeChanges()
    }

    /// The ACK to a PING addressed to this peer; a PING for an earlier life of this peer (same
    /// address, old id) gets no answer.
    mutating func answerPing(_ ping: Ping, first: NodeID? = nil, replyTo: Endpoint, digest: SetDigest, out: inout Outbox) {
        guard ping.target == config.id, !config.faults.contains(.ignoreProbes) else { return }
        let piggyback = piggyback(first: first, incarnation: out.incarnation, overhead: out.membershipOverhead)
        out.send(.ack(Ping(probeID: ping.probeID, target: config.id, revoked: digest, piggyback: piggyback)), to: [.peer(replyTo)],
            extensions: listedTags(onPiggyback: piggyback, overhead: out.membershipOverhead))
    }

    mutating func onAck(_ ack: Ping, from sender: NodeID, replyTo: Endpoint, now: Now, digest: SetDigest, out: inout Outbox) -> [MembershipChange] {
        noteDigest(ack.revoked, from: sender, digest: digest)
        mergeAll(ack.piggyback, source: replyTo.ip, now: now, digest: digest, out: &out)
        if let relay = relays[ack.probeID], relay.target == ack.target, ack.target == sender {
            relays[ack.probeID] = nil
            if let requester = relay.requester {
                let piggyback = piggyback(first: nil, incarnation: out.incarnation, overhead: out.membershipOverhead)
                out.send(.ack(Ping(probeID: relay.probeID, target: ack.target, revoked: digest, piggyback: piggyback)), to: [.peer(requester)],
                    extensions: listedTags(onPiggyback: piggyback, overhead: out.membershipOverhead))
            }
        } else if let relay = relays[ack.probeID], relay.lastChance, relay.target == ack.target {
            // A helper reached the suspect for this peer's last chance.
            relays[ack.probeID] = nil
            relayedProofOfLife(ack.target, now: now, out: &out)
        } else if let probe = probing.inFlight, probing.onAck(probeID: ack.probeID, target: ack.target) {
            // Back from a bad spell: push-pull at once rather than within an interval (§6.1.4).
            if probing.takeRecovery() { nextPushPullAt = min(nextPushPullAt, now.nanos) }
            if ack.target == sender {
                noteDirectAck(from: sender, sentAt: probe.sentAt, now: now.nanos)
            } else {
                relayedProofOfLife(ack.target, now: now, out: &out)
            }
        }
        return takeChanges()
    }

    /// A helper's ACK relayed from `target`: proof of life at the incarnation suspected, as good
    /// as hearing the member.
    private mutating func relayedProofOfLife(_ target: NodeID, now: Now, out: inout Outbox) {
        guard let member = members[target], member.status == .suspect else { return }
        members.modify(target) { $0.lastHeard = now.nanos }
        setStatus(target, .alive, now: now, out: &out)
    }

    /// A PING_REQ: probe the target for the requester, only if it is a member this peer holds
    /// live (Protocol.md §3.1: the address is never taken from the request).
    mutating func onPingRequest(_ request: Probe, replyTo: Endpoint, now: Now, digest: SetDigest, out: inout Outbox) {
        guard request.target != config.id else {
            // Asked to probe ourselves: answer as the target would.
            out.send(.ack(Ping(probeID: request.probeID, target: config.id, revoked: digest)), to: .peer(replyTo))
            return
        }
        guard let target = members[request.target], target.isLive else {
            // Not a member this peer can vouch for: say so at once, so that the requester
            // learns its own path works (Lifeguard: a NACK is proof of the requester's health).
            out.send(.nack(request), to: .peer(replyTo))
            return
        }
        let timeout = probing.health.scaled(config.pingTimeout)
        let relay = Relay(requester: replyTo, probeID: request.probeID, target: request.target,
            verdictAt: now.nanos.saturatingAdd(timeout / 5 * 4), expires: now.nanos.saturatingAdd(config.protocolPeriod))
        startRelay(relay, digest: digest, at: target.endpoint, out: &out)
    }

    mutating func onNack(_ nack: Probe) {
        probing.onNack(probeID: nack.probeID, target: nack.target)
    }

    /// A CHANGE carries its sender's own verdicts: a suspicion, a confirmation, a death, a
    /// refutation (Protocol.md §6.1). A first-hand suspicion is checked at once by the
    /// suspect's witnesses and counts as a confirmation of one this peer already holds.
    mutating func onChange(_ entries: [MemberEntry], from sender: NodeID, replyTo: Endpoint, now: Now, digest: SetDigest, out: inout Outbox) -> [MembershipChange] {
        for entry in entries {
            merge(entry, source: replyTo.ip, from: sender, now: now, digest: digest, out: &out)
            guard entry.status == .suspect, entry.id != sender, var held = suspicions[entry.id], held.incarnation == entry.incarnation else { continue }
            // The witnesses are chosen without the first accuser heard first-hand (its CHANGE comes
            // a period before any confirmation), so that every peer names the same three; a
            // witness checks once, even if hearsay made it hold the suspicion before.
            let accuser = held.accuser ?? sender
            held.accuser = accuser
            suspicions[entry.id] = held
            let witnesses = witnesses(of: entry.id, accuser: accuser)
            // Only a witness confirms (it pinged the suspect and failed): a member with a bad
            // link of its own suspects everyone, and a few such accusing the same member were
            // confirmations enough to kill it without the last chance (§6.1.6).
            if witnesses.contains(sender) {
                confirm(entry.id, by: sender, now: now)
                held = suspicions[entry.id] ?? held
            }
            guard !held.accused, !config.faults.contains(.noWitness), witnesses.contains(config.id) else { continue }
            checkSuspect(entry.id, now: now, digest: digest, out: &out)
        }
        return takeChanges()
    }

    /// The suspect's witnesses as this peer names them (§6.1.6): the first `witnesses` after it
    /// on the ring of its alive members and itself, the first accuser it heard skipped.
    func witnesses(of id: NodeID, accuser: NodeID?) -> [NodeID] {
        ring.successors(of: id, count: config.witnesses, excluding: accuser)
    }

    /// PINGs a suspect once per suspicion (a witness, or a peer told of a death it did not
    /// suspect): no ACK within a period and it confirms in its own name, by multicast unless
    /// the check was of a CHANGE(dead) and this peer is no witness (``witnessFailed(_:check:now:out:)``).
    private mutating func checkSuspect(_ id: NodeID, now: Now, digest: SetDigest, out: inout Outbox) {
        guard suspicions[id]?.witnessing == false, let member = members[id] else { return }
        let verdictAt = now.nanos.saturatingAdd(probing.health.scaled(config.protocolPeriod))
        let check = startRelay(Relay(requester: nil, probeID: 0, target: id, verdictAt: verdictAt, expires: verdictAt),
            digest: digest, at: member.endpoint, out: &out)
        suspicions[id]?.check = check
    }

    mutating func onGoodbye(_ header: Header, now: Now, out: inout Outbox) -> [MembershipChange] {
        guard let member = members[header.sender], member.status != .left else { return [] }
        // A GOODBYE at the highest incarnation could never be refuted if forged (§6.1.3).
        guard header.incarnation < UInt32.max else {
            out.drop("unrefutable")
            return []
        }
        members.modify(header.sender) { $0.incarnation = max($0.incarnation, header.incarnation) }
        setStatus(header.sender, .left, now: now, out: &out)
        return takeChanges()
    }

    /// Second-hand entries (piggyback, MEMBERS, HELLO_REPLY), one at a time.
    mutating func mergeAll(_ entries: [MemberEntry], source: IPAddress, now: Now, digest: SetDigest, out: inout Outbox) {
        for entry in entries { merge(entry, source: source, from: nil, now: now, digest: digest, out: &out) }
    }

    /// Applies one entry by the SWIM precedence rules (Protocol.md §6.1.3). `sender` is the
    /// author of a first-hand verdict (CHANGE), nil for hearsay. `joinView`: the entry comes
    /// in a view (MEMBERS, HELLO_REPLY) sent while this peer joins, admitted whole (§6.6).
    mutating func merge(_ entry: MemberEntry, source: IPAddress, from sender: NodeID?, joinView: Bool = false, now: Now, digest: SetDigest, out: inout Outbox) {
        // A claim against a member at the highest incarnation could never be refuted (§6.1.3).
        if entry.status != .alive, entry.incarnation == UInt32.max {
            out.drop("unrefutable")
            return
        }
        if entry.id == config.id {
            if entry.status != .alive, entry.incarnation >= out.incarnation { refute(claimedAt: entry.incarnation, now: now, out: &out) }
            return
        }
        // An entry of the other family cannot be reached from this peer: one cluster is one family
        // (Protocol.md §2.5, issue 19). The entry is skipped.
        guard let endpoint = entry.endpoint(source: source) else {
            out.drop("unsupported_family")
            return
        }
        guard let member = members[entry.id] else {
            // Learn of a member second-hand only while it is live and not just reaped.
            guard entry.status.isLiveStatus, reaped[entry.id] == nil, replaced[entry.id] == nil,
                  admitNewMember(entry.id, at: endpoint, vouched: sender == nil, now: now, rated: !(joinView && isJoining(now: now)), out: &out) else { return }
            store(Member(id: entry.id, name: entry.name, endpoint: endpoint, incarnation: entry.incarnation,
                status: .alive, lastHeard: now.nanos, statusSince: now.nanos), for: entry.id)
            disseminate(entry.id, out: &out)
            newcomer(entry.id, now: now, out: &out)
            if entry.status == .suspect { suspect(entry.id, at: entry.incarnation, by: sender ?? entry.id, accused: false, now: now, out: &out) }
            return
        }
        let overrides: Bool
        switch entry.status {
        case .alive: overrides = entry.incarnation > member.incarnation
        case .suspect:
            // A suspicion at a higher incarnation is a new one (the member refuted the old
            // and was suspected again), also over a suspicion held at a lower one.
            overrides = (member.status == .alive && entry.incarnation >= member.incarnation)
                || entry.incarnation > member.incarnation
        case .dead, .left:
            overrides = member.status.isLiveStatus && entry.incarnation >= member.incarnation
                || (entry.incarnation > member.incarnation)
        }
        guard overrides else {
            // Others hold it live at the incarnation this peer declared dead (or left): the
            // member may never have heard the verdict. A peer at 80 % loss declares healthy
            // members dead that nobody else does, so no refutation comes; at 5,000 simulated
            // peers such views stayed wrong for up to 35 s after the loss ended (§6.1.3).
            if entry.status.isLiveStatus, !member.isLive, entry.incarnation == member.incarnation,
               !config.faults.contains(.keepStaleVerdicts) {
                tellOfVerdict(entry.id, at: member.endpoint, digest: digest, out: &out)
            }
            return
        }
        // A death is adopted only over a suspicion this peer holds at the same incarnation.
        // Held alive (or suspect at an older one), the member becomes suspect instead and
        // this peer's own timeout and last chance decide: a verdict by a peer with a bad link,
        // about a suspect that never learned of it (a datagram from it revived it elsewhere,
        // no refutation) would otherwise spread to every healthy peer (§6.1.3).
        if entry.status == .suspect {
            suspect(entry.id, at: entry.incarnation, by: sender ?? entry.id, accused: false, now: now, out: &out)
            return
        }
        if entry.status == .dead, member.status.isLiveStatus, member.status == .alive || entry.incarnation > member.incarnation {
            suspect(entry.id, at: entry.incarnation, by: sender ?? entry.id, accused: false, now: now, out: &out)
            if sender != nil { suspicions[entry.id]?.deathHeard = true }
            // Checked at once, as a witness does: its PING carries the suspicion first, so a
            // live suspect refutes within a round trip.
            checkSuspect(entry.id, now: now, digest: digest, out: &out)
            return
        }
        // Hearsay of a death over a suspicion held at the same incarnation is not adopted:
        // this peer's own timeout and last chance decide. Such an entry can be stale — at 5,000
        // simulated peers, peers just back from 80 % loss adopted a death the suspect had
        // refuted seconds before, from piggyback — and the accuser's CHANGE (first-hand) or
        // the timeout declare a real death.
        if entry.status == .dead, sender == nil, member.status == .suspect, entry.incarnation == member.incarnation,
            !config.faults.contains(.adoptHearsayDeath) { return }
        members.modify(entry.id) { $0.incarnation = entry.incarnation }
        if entry.status != member.status {
            setStatus(entry.id, entry.status, now: now, out: &out)
        } else {
            disseminate(entry.id, out: &out)
        }
    }

    /// Someone claims this peer suspect, dead or left at `claimed`: outbid that with a higher
    /// incarnation, multicast at once. Claims at the highest incarnation are ignored by every
    /// receiver (§6.1.3), so there is always a higher one to take.
    mutating func refute(claimedAt claimed: UInt32, now: Now, out: inout Outbox) {
        guard claimed >= out.incarnation, claimed < UInt32.max else { return }
        out.incarnation = claimed + 1
        out.emit(.refuted(incarnation: out.incarnation))
        probing.noteRefuted()
        announceOwnEntry(now: now, out: &out)
    }

    /// Multicasts this peer's own entry at its incarnation, queues it for gossip, and sends it
    /// once more a period later: a peer that misses a refutation times the suspicion out unless
    /// gossip reaches it first, and one lost datagram should not make a false death.
    mutating func announceOwnEntry(now: Now, out: inout Outbox) {
        disseminate(config.id, out: &out)
        sendChange([ownEntry(incarnation: out.incarnation)], out: &out)
        refuteAgainAt = now.nanos.saturatingAdd(config.protocolPeriod)
    }

    mutating func setStatus(_ id: NodeID, _ status: MemberStatus, now: Now, out: inout Outbox) {
        guard var member = members[id], member.status != status else { return }
        let old = member.status
        member.status = status
        member.statusSince = now.nanos
        member.revived = old == .suspect && status == .alive
        if status == .alive { member.lastHeard = now.nanos }
        store(member, for: id)
        if status != .suspect {
            suspicions[id] = nil
            deadlines.cancel(id, .suspicion)
        }
        if status.isLiveStatus {
            deadlines.cancel(id, .reap)
        } else {
            deadlines.set(id, .reap, at: now.nanos.saturatingAdd(config.reapAfter))
        }
        disseminate(id, out: &out)
        // A member held back from the published view changes unseen; live again, it waits
        // with the newcomers (§6.1.8).
        if member.isPublished {
            out.emit(.statusChanged(name: member.name, id: id, from: old, to: status))
        } else if status.isLiveStatus, !old.isLiveStatus {
            newcomer(id, now: now, out: &out)
        }
        if !status.isLiveStatus, old.isLiveStatus { changes.append(.gone(id)) }
    }
}
