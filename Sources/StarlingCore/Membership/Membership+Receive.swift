/// Membership: what other peers' datagrams tell (Protocol.md §6.1.1–§6.1.3).
extension Membership {
    /// Any datagram from a peer proves it alive at its header's incarnation.
    mutating func heardFrom(_ header: Header, at endpoint: Endpoint, intervalMillis: UInt32?, now: Now, out: inout Outbox) {
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
            members.modify(id) { $0 = member }
            if revives {
                setStatus(id, .alive, now: now, out: &out)
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
        guard admitNewMember(now: now, out: &out) else { return }
        reaped[id] = nil
        if wasReplaced {
            out.emit(.duplicateName(name: header.name, ids: [id] + (byName[ByteString(header.name)].map { [$0] } ?? [])))
        } else {
            replaceSameName(header.name, newID: id, address: endpoint.address, now: now, out: &out)
        }
        store(Member(id: id, name: header.name, endpoint: endpoint, incarnation: header.incarnation,
            status: .alive, intervalMillis: Member.clampInterval(intervalMillis ?? config.intervalMillis), lastHeard: now.nanos,
            statusSince: now.nanos, clock: header.stamp), for: id)
        enqueueGossip(id)
        out.emit(.joined(name: header.name, id: id, endpoint: endpoint))
    }

    /// A restarted agent (new boot id, same name, same host) replaces its old entry; the same
    /// name from another host is reported as a duplicate.
    private mutating func replaceSameName(_ name: String, newID: NodeID, address: UInt32, now: Now, out: inout Outbox) {
        guard let oldID = byName[ByteString(name)], oldID != newID, let old = members[oldID] else { return }
        if old.endpoint.address == address {
            store(nil, for: oldID)
            gossipQueue[oldID] = nil
            reaped[oldID] = now.nanos
            replaced[oldID] = now.nanos
            out.emit(.replaced(name: name, old: oldID, new: newID))
        } else if old.isLive {
            out.emit(.duplicateName(name: name, ids: [oldID, newID]))
        }
    }

    /// Notes the revoked-set digest a member's beat carries (`digest` is this peer's own).
    mutating func noteBeat(_ beat: Beat, from id: NodeID, digest: SetDigest) {
        members.modify(id) { member in
            member.revoked = beat.revoked
            member.digestMismatches = beat.revoked == digest ? 0 : min(member.digestMismatches, 1_000) + 1
        }
    }

    /// Answers a newcomer's ANNOUNCE at once, by unicast, so it learns of us before its start-up ends.
    mutating func answerAnnounce(from replyTo: Endpoint, digest: SetDigest, out: inout Outbox) {
        out.send(.heartbeat(makeBeat(gossip: [], digest: digest)), to: .peer(replyTo))
        if !config.multicast { sendMembers(to: replyTo, replyWanted: false, out: &out) }
    }

    /// The endpoint of `id` when its beats showed a different digest twice in a row while it is
    /// alive: its differences are worth pulling. The count starts again.
    mutating func takeDiverged(_ id: NodeID) -> Endpoint? {
        guard let member = members[id], member.status == .alive, member.digestMismatches >= 2 else { return nil }
        members.modify(id) { $0.digestMismatches = 0 }
        return member.endpoint
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

    /// Applies one gossiped entry by the SWIM precedence rules (Protocol.md §6.1.3).
    mutating func merge(_ entry: MemberEntry, source: UInt32, now: Now, digest: SetDigest, out: inout Outbox) -> [MembershipChange] {
        // A claim against a member at the highest incarnation could never be refuted (§6.1.3).
        if entry.status != .alive, entry.incarnation == UInt32.max {
            out.drop("unrefutable")
            return []
        }
        if entry.id == config.id {
            if entry.status != .alive, entry.incarnation >= out.incarnation { refute(claimedAt: entry.incarnation, now: now, digest: digest, out: &out) }
            return []
        }
        var entry = entry
        // An IPv6 member cannot be reached from this peer (issue 19): the entry is skipped.
        guard let endpoint = entry.endpoint(source: source) else {
            out.drop("unsupported_family")
            return []
        }
        entry.intervalMillis = Member.clampInterval(entry.intervalMillis)
        guard let member = members[entry.id] else {
            // Learn of a member second-hand only while it is live and not just reaped.
            guard entry.status.isLiveStatus, reaped[entry.id] == nil, replaced[entry.id] == nil, admitNewMember(now: now, out: &out) else { return [] }
            store(Member(id: entry.id, name: entry.name, endpoint: endpoint,
                incarnation: entry.incarnation, status: entry.status, intervalMillis: entry.intervalMillis,
                lastHeard: now.nanos, statusSince: now.nanos), for: entry.id)
            enqueueGossip(entry.id)
            out.emit(.joined(name: entry.name, id: entry.id, endpoint: endpoint))
            return []
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
        guard overrides else { return [] }
        // A member we heard from directly within its interval is not taken for suspect on hearsay.
        if entry.status == .suspect, now.nanos &- member.lastHeard < member.interval { return [] }
        members.modify(entry.id) { $0.incarnation = entry.incarnation }
        if entry.status != member.status {
            setStatus(entry.id, entry.status, now: now, out: &out)
            if entry.status == .suspect { startProbe(entry.id, now: now, out: &out) }
        } else {
            enqueueGossip(entry.id)
        }
        return takeChanges()
    }

    /// Someone claims this peer suspect, dead or left at `claimed`: outbid that with a higher
    /// incarnation. Claims at the highest incarnation are ignored by every receiver (§6.1.3), so
    /// there is always a higher one to take. (Only inputs of a running peer reach here.)
    mutating func refute(claimedAt claimed: UInt32, now: Now, digest: SetDigest, out: inout Outbox) {
        guard claimed >= out.incarnation, claimed < UInt32.max else { return }
        out.incarnation = claimed + 1
        out.emit(.refuted(incarnation: out.incarnation))
        sendHeartbeat(now: now, digest: digest, out: &out)
    }

    mutating func setStatus(_ id: NodeID, _ status: MemberStatus, now: Now, out: inout Outbox) {
        guard var member = members[id], member.status != status else { return }
        let old = member.status
        member.status = status
        member.statusSince = now.nanos
        if status == .alive { member.probe = nil; member.lastHeard = now.nanos }
        if !status.isLiveStatus { member.probe = nil }
        store(member, for: id)
        enqueueGossip(id)
        out.emit(.statusChanged(name: member.name, id: id, from: old, to: status))
        if !status.isLiveStatus { changes.append(.gone(id)) }
    }
}
