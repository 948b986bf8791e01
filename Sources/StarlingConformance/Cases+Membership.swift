import StarlingCore
import StarlingPOSIX

/// Membership cases of version 2 (Protocol.md §6.1: SWIM probing, Lifeguard, CHANGE
/// multicast once). Each names the section whose rule it checks.
extension Suite {
    /// The default protocol period (§6.2): bounds below are counted in periods.
    static let periodMillis: UInt64 = 200

    /// A second fake peer on the same target, for cases that need a member besides us.
    func otherPeer(_ name: String) -> FakePeer? {
        guard let other = try? FakePeer(interface: interface, group: peer.group, cluster: peer.cluster, keys: peer.codec.keys, name: name) else {
            return nil
        }
        other.target = peer.target
        other.targetID = peer.targetID
        other.targetName = peer.targetName
        return other
    }

    /// The rows of the target's `members` reply (nil when it did not answer).
    func memberRows() -> [JSON]? { peer.control("members")?.1["members"]?.arrayValue }

    /// Members the target holds alive or suspect, itself included (from `members`).
    func liveCount() -> Int? {
        guard let rows = memberRows() else { return nil }
        return rows.filter { ["alive", "suspect"].contains($0["status"]?.stringValue ?? "") }.count
    }

    /// §6.1.5: a PING is answered by unicast with an ACK carrying the same probe id and the
    /// target's own id.
    func answersPing() -> Verdict {
        guard let target = peer.targetID else { return .skip("target unknown") }
        peer.send(.ping(Ping(probeID: 991, target: target, revoked: .empty)))
        let ack = peer.expect(1_000) { received in
            guard case .ack(let ack) = received.message.payload, ack.probeID == 991 else { return false }
            return received.unicast
        }
        guard let ack, case .ack(let body) = ack.message.payload else { return .fail("no ACK with probe id 991 by unicast within 1 s") }
        return body.target == target ? .pass : .fail("ACK names \(body.target.short), not the target \(target.short)")
    }

    /// §6.1.5: a PING_REQ about a member the target holds live makes it PING that member (at
    /// the address its own view holds) and relay the member's ACK to us with our probe id.
    func relaysPingRequest() -> Verdict {
        guard peer.targetID != nil, let member = otherPeer("conformance-member") else { return .skip("cannot open a second fake peer") }
        // The member's own PING makes it known and alive (§6.1.2); its answer does not matter here.
        // It leaves at the end, so that the target does not go on probing a silent member.
        defer { member.toGroup(.goodbye) }
        member.ping(11)
        member.drain()
        peer.send(.pingRequest(Probe(probeID: 5252, target: member.id)))
        var pinged = false
        _ = member.expect(1_000) { received in
            if case .ping(let ping) = received.message.payload, ping.target == member.id, received.unicast { pinged = true }
            return pinged
        }
        guard pinged else { return .fail("the target did not PING the member named in a PING_REQ") }
        let relayed = peer.expect(1_000) { received in
            guard case .ack(let ack) = received.message.payload else { return false }
            return ack.probeID == 5252 && received.unicast
        }
        guard let relayed, case .ack(let ack) = relayed.message.payload else { return .fail("the member's ACK was not relayed with probe id 5252") }
        return ack.target == member.id ? .pass : .fail("relayed ACK names \(ack.target.short), not the member \(member.id.short)")
    }

    /// §6.1.5: a PING_REQ naming the target itself is answered at once with the target's own ACK.
    func acksPingRequestAboutItself() -> Verdict {
        guard let target = peer.targetID else { return .skip("target unknown") }
        peer.send(.pingRequest(Probe(probeID: 6363, target: target)))
        let ack = peer.expect(1_000) { if case .ack(let a) = $0.message.payload { a.probeID == 6363 && $0.unicast } else { false } }
        guard let ack, case .ack(let body) = ack.message.payload else { return .fail("no ACK with probe id 6363 to a PING_REQ naming the target") }
        return body.target == target ? .pass : .fail("ACK names \(body.target.short), not the target")
    }

    /// §6.1.3 refutation: a CHANGE calling the target suspect at its
    /// incarnation i makes it multicast CHANGE with its own entry alive at i + 1.
    func refutesWithChange() -> Verdict {
        guard let target = peer.targetID, let endpoint = peer.target else { return .skip("target unknown") }
        peer.ping()
        guard let heard = peer.expect(1_000, { _ in true }) else { return .fail("the target is silent") }
        let current = heard.message.header.incarnation
        let rumour = MemberEntry(id: target, incarnation: current, status: .suspect, endpoint: endpoint, name: peer.targetName ?? "target")
        peer.send(.change([rumour]))
        var seen: [String] = []
        let refuted = peer.expect(1_000) { received in
            guard case .change(let entries) = received.message.payload, !received.unicast else { return false }
            seen += entries.filter { $0.id == target }.map { "\($0.status.name)@\($0.incarnation)" }
            return entries.contains { $0.id == target && $0.status == .alive && $0.incarnation == current &+ 1 }
        }
        return refuted != nil ? .pass : .fail("no group CHANGE(alive, \(current &+ 1)) about itself after a suspicion at \(current) (saw \(seen))")
    }

    /// §6.1.2: a newcomer's ANNOUNCE is answered with the whole view in MEMBERS by its
    /// responders on the ring; with few live members (us and the target) the target is one.
    func answersAnnounce() -> Verdict {
        guard let target = peer.targetID, let newcomer = otherPeer("conformance-announcer") else { return .skip("cannot open a second fake peer") }
        defer { newcomer.toGroup(.goodbye) }
        newcomer.toGroup(.announce(Announcement(memberCount: 1, revoked: .empty)))
        let reply = newcomer.expect(1_000) { received in
            guard case .members(let page) = received.message.payload else { return false }
            return received.unicast && page.entries.contains { $0.id == target }
        }
        return reply == nil ? .fail("no MEMBERS by unicast carrying the target's own entry within 1 s of an ANNOUNCE") : .pass
    }

    /// §6.1.5 with §6.1.2: a peer heard from (here by its ANNOUNCE) joins the target's shuffled
    /// round robin, so the target PINGs it within 2 · n periods of n live members (a margin of
    /// two periods, and twice that for the target's local health).
    func probesNewcomer() -> Verdict {
        guard let newcomer = otherPeer("conformance-newcomer") else { return .skip("cannot open a second fake peer") }
        defer { newcomer.toGroup(.goodbye) }
        newcomer.toGroup(.announce(Announcement(memberCount: 1, revoked: .empty)))
        System.sleep(millis: 50)
        guard let live = liveCount() else { return .fail("no members reply") }
        let periods = UInt64(2 * live + 2)
        let pinged = newcomer.expect(2 * periods * Self.periodMillis) { received in
            if case .ping(let ping) = received.message.payload { return ping.target == newcomer.id && received.unicast }
            return false
        }
        return pinged == nil ? .fail("no PING to an announced newcomer within \(periods) periods of \(Self.periodMillis) ms (\(live) live)") : .pass
    }
}
