import StarlingCore
import StarlingPOSIX

/// Cases of version 2's verdicts (Protocol.md §6.1.3 dead entries and refutation, §6.1.6
/// witnesses). Each names the section whose rule it checks.
extension Suite {
    /// §6.1.3 refutation: a CHANGE calling the target dead at its incarnation i makes it
    /// multicast CHANGE with its own entry alive at i + 1 (dead is refuted like suspect).
    func refutesDeath() -> Verdict {
        guard let target = peer.targetID, let endpoint = peer.target else { return .skip("target unknown") }
        peer.ping()
        guard let heard = peer.expect(1_000, { _ in true }) else { return .fail("the target is silent") }
        let current = heard.message.header.incarnation
        let verdict = MemberEntry(id: target, incarnation: current, status: .dead, endpoint: endpoint, name: peer.targetName ?? "target")
        peer.send(.change([verdict]))
        let refuted = peer.expect(1_000) { received in
            guard case .change(let entries) = received.message.payload, !received.unicast else { return false }
            return entries.contains { $0.id == target && $0.status == .alive && $0.incarnation == current &+ 1 }
        }
        return refuted != nil ? .pass : .fail("no group CHANGE(alive, \(current &+ 1)) about itself after a CHANGE(dead) at \(current)")
    }

    /// §6.1.3 merge: CHANGE([dead(i)]) about a member the target holds alive at i makes it
    /// suspect, not dead: the target PINGs it at once with its suspicion first, and the
    /// member's ACK revives it. Two in a row make it dead (the second finds the suspicion;
    /// `members` says so).
    func appliesChangeDead() -> Verdict {
        guard let member = otherPeer("conformance-doomed") else { return .skip("cannot open a second fake peer") }
        member.ping(12)
        guard listed(member, as: "alive") else { return .fail("a member that PINGed the target is not listed alive within 2 s") }
        let verdict = MemberEntry(id: member.id, incarnation: member.incarnation, status: .dead,
            endpoint: peer.unicast.local.with(port: 1), name: member.name)
        peer.send(.change([verdict]))
        // The fake member ACKs every PING it gets while it waits.
        let check = member.expect(1_000) { received in
            guard Self.isPing(received, of: member.id), case .ping(let ping) = received.message.payload else { return false }
            return ping.piggyback.first.map { $0.id == member.id && $0.status == .suspect } ?? false
        }
        member.drain()
        let checked = status(of: member)
        peer.send(.change([verdict]))
        peer.send(.change([verdict]))
        System.sleep(millis: 50)
        let twice = status(of: member)
        // Back at a higher incarnation, then gone, so that later cases see a clean view.
        member.revive()
        member.drain()
        member.toGroup(.goodbye)
        guard check != nil else { return .fail("no PING of the member with its own suspect entry first after CHANGE([dead]) about it held alive") }
        guard checked == "alive" else { return .fail("after one CHANGE([dead]) and the member's ACK it is listed \(checked ?? "absent"), not alive") }
        return twice == "dead" ? .pass : .fail("after two CHANGE([dead]) in a row the member is listed \(twice ?? "absent"), not dead")
    }

    /// §6.1.3 hearsay: a dead entry heard second-hand (piggybacked on a PING) about a member
    /// the target holds suspect at the same incarnation is not adopted: the target's own
    /// timeout and last chance decide. The member is made suspect by a first-hand
    /// CHANGE(suspect), the PING follows at once, and the member reads nothing (so answers
    /// nothing) until the case has looked. The target's ACK to that PING shows it merged the
    /// piggyback (it merges before it answers).
    func hearsayDeathWaits() -> Verdict {
        withSilentMember("conformance-hearsay", probeID: 14) { target, member, entry in
            let start = System.now().nanos
            peer.send(.change([entry(.suspect)]))
            peer.send(.ping(Ping(probeID: 15, target: target, revoked: .empty, piggyback: [entry(.dead)])))
            let acked = peer.expect(1_000) { received in
                if case .ack(let ack) = received.message.payload { return ack.probeID == 15 && received.unicast }
                return false
            }
            guard acked != nil else { return .fail("no ACK to the PING that carried the dead entry (probe id 15) within 1 s") }
            let after = status(of: member)
            let elapsed = (System.now().nanos &- start) / 1_000_000
            if after == "suspect" { return .pass }
            // A suspicion at a handful of members can run out (with its last chance) in under a
            // second: a late look proves nothing.
            if after == "dead", elapsed > 500 { return .skip("looked \(elapsed) ms after the suspicion began: too late to tell hearsay from its own timeout") }
            return .fail("\(elapsed) ms after a first-hand CHANGE(suspect) and a piggybacked dead entry at the same incarnation the member is listed \(after ?? "absent"), not suspect" + (after == "dead" ? ": hearsay was adopted" : ""))
        }
    }

    /// §6.1.3 hearsay of life over a death verdict: the target declares a member dead (a
    /// first-hand CHANGE(suspect), then CHANGE(dead)); the member stays silent. PINGs that
    /// piggyback the member alive at that incarnation follow; once the verdict has left the
    /// target's piggyback queue (its ACKs carry it a few times), the target must PING the
    /// member with its dead entry first, so that a member that never heard the verdict refutes.
    func hearsayOfLifeTellsTheDead() -> Verdict {
        withSilentMember("conformance-stale-verdict", probeID: 16) { target, member, entry in
            peer.send(.change([entry(.suspect)]))
            peer.send(.change([entry(.dead)]))
            guard status(of: member) == "dead" else { return .skip("the member is not listed dead after CHANGE(suspect) and CHANGE(dead); case 6.1.3/change-dead-is-checked-then-dead says why") }
            // What the target sent the member while it was suspect (a witness's PINGs) is not it.
            member.drain()
            for round in UInt32(0)..<20 {
                peer.send(.ping(Ping(probeID: 30 + round, target: target, revoked: .empty, piggyback: [entry(.alive)])))
                let told = member.expect(150) { received in
                    guard case .ping(let ping) = received.message.payload, received.unicast, ping.target == member.id,
                          let first = ping.piggyback.first else { return false }
                    return first.id == member.id && first.status == .dead
                }
                if told != nil { return .pass }
            }
            return .fail("3 s of PINGs piggybacking the member alive at the incarnation the target declared dead, and the target never PINGed the member with its dead entry first")
        }
    }

    /// §6.1.6 witnesses: with the target, us (the accuser) and one more member alive, the
    /// target is one of that member's three witnesses (the first accuser is skipped), so a
    /// first-hand CHANGE(suspect) about it makes the target PING it at once. The case waits for a
    /// round-robin PING of the member first: no other PING of it can come within a period.
    func witnessPings() -> Verdict {
        guard let suspect = otherPeer("conformance-suspect") else { return .skip("cannot open a second fake peer") }
        defer { suspect.toGroup(.goodbye) }
        suspect.ping(13)
        // The target probes one member per period (§6.1.5); wait for the suspect's turn.
        guard suspect.expect(4 * Self.periodMillis * 3, { Self.isPing($0, of: suspect.id) }) != nil else {
            return .fail("the target never probed a live member")
        }
        let rumour = MemberEntry(id: suspect.id, incarnation: suspect.incarnation, status: .suspect,
            endpoint: peer.unicast.local.with(port: 1), name: suspect.name)
        peer.send(.change([rumour]))
        // Well under one period (150 ms by default): only a witness's PING can come this soon.
        let checked = suspect.expect(60) { Self.isPing($0, of: suspect.id) }
        return checked != nil ? .pass : .fail("no PING of the suspect within 60 ms of a first-hand CHANGE(suspect): the target did not act as its witness")
    }

    /// §6.1.5 quiet suspicions: a member the target accused by CHANGE, that came back
    /// (CHANGE(alive, i + 1) to the group) and falls silent again at once, is accused again
    /// without a CHANGE: the target's next PING of it carries its suspect entry at i + 1 first
    /// (§6.1.4), and the group hears no CHANGE(suspect) about it at i + 1 within 2 s of the
    /// refutation (the window is 20 periods, 3 s by default). The main fake peer answers the
    /// target's PINGs meanwhile, so that the target's local health does not slow its probes.
    func quietAccusation() -> Verdict {
        withSilentMember("conformance-flapping", probeID: 15) { _, member, entry in
            member.answersPings = false
            defer { member.answersPings = true }
            // The target probes one member per period; a few rounds at most.
            guard watch(member, 16 * Self.periodMillis, { Self.suspects($0, member, at: member.incarnation) }) != nil else {
                return .fail("no CHANGE(suspect) to the group within \(16 * Self.periodMillis) ms about a member that stopped answering PINGs")
            }
            member.incarnation += 1
            member.toGroup(.change([entry(.alive)]))
            let refutedAt = System.now().nanos
            var loudAt: UInt64?
            func note(_ received: FakePeer.Received) {
                if loudAt == nil, Self.suspects(received, member, at: member.incarnation) { loudAt = received.at }
            }
            let buddy = watch(member, 12 * Self.periodMillis) { received in
                note(received)
                guard Self.isPing(received, of: member.id), case .ping(let ping) = received.message.payload else { return false }
                return ping.piggyback.first.map { $0.id == member.id && $0.status == .suspect && $0.incarnation == member.incarnation } ?? false
            }
            // A CHANGE sent in the same turn as that PING may still wait in the group socket.
            _ = watch(member, 100) { received in
                note(received)
                return false
            }
            if let loudAt {
                let after = (loudAt &- refutedAt) / 1_000_000
                return after < 2_000
                    ? .fail("a CHANGE(suspect) at \(member.incarnation) to the group \(after) ms after the member's refutation: the accusation was not quiet")
                    : .skip("the target accused the member by CHANGE \(after) ms after its refutation: its probes (scaled by local health) came too late to tell")
            }
            return buddy != nil ? .pass
                : .skip("no PING of the member with its suspect entry at \(member.incarnation) first within \(12 * Self.periodMillis) ms of its refutation (local health may have slowed the target's probes)")
        }
    }

    /// §6.1.3 death checks: a CHANGE(dead) heard first-hand about a member the target holds
    /// alive makes it PING the member; when that check fails and the target is not one of the
    /// member's witnesses, it confirms the suspicion locally and multicasts nothing (the whole
    /// group heard the same CHANGE and checks for itself). Three more fake members are placed on
    /// the ring (§6.1.3) so that they, not the target, are the suspect's witnesses; they answer
    /// the target's PINGs throughout, the suspect none.
    func deathCheckIsQuiet() -> Verdict {
        guard let target = peer.targetID else { return .skip("target unknown") }
        let accuser = peer.id
        let names = ["conformance-checked", "conformance-witness-1", "conformance-witness-2", "conformance-witness-3"]
        let fakes = names.compactMap { otherPeer($0) }
        guard fakes.count == names.count else { return .skip("cannot open four more fake peers") }
        let (suspect, witnesses) = (fakes[0], Array(fakes[1...]))
        defer {
            suspect.answersPings = true
            suspect.revive()
            for fake in fakes {
                fake.drain()
                fake.toGroup(.goodbye)
            }
        }
        // The alive members the target holds now (strays of earlier cases included), and ids
        // drawn for the four until the three are the suspect's witnesses and the target is not.
        let alive = aliveIDs() + [target, accuser]
        var rng = SplitMix64(seed: System.randomUInt64())
        var placed = false
        for _ in 0..<10_000 where !placed {
            for fake in fakes { fake.id = NodeID.random(using: &rng) }
            let chosen = RingChoice.successors(of: suspect.id, among: alive + fakes.map(\.id), count: 3, excluding: accuser)
            placed = Set(chosen) == Set(witnesses.map(\.id))
        }
        guard placed else { return .skip("no ids drawn put three fake members between the suspect and the target on the ring") }
        for (index, fake) in fakes.enumerated() { fake.ping(40 + UInt32(index)) }
        guard fakes.allSatisfy({ listed($0, as: "alive", answering: fakes) }) else {
            return .fail("four members that PINGed the target are not all listed alive within 2 s")
        }
        suspect.answersPings = false
        suspect.drain()
        peer.send(.change([MemberEntry(id: suspect.id, incarnation: suspect.incarnation, status: .dead,
            endpoint: peer.unicast.local.with(port: 1), name: suspect.name)]))
        var checked = false
        var loud: FakePeer.Received?
        // The check's verdict is due one period (150 ms by default, × local health) after its
        // PING. The suspicion may run out and the member be declared dead within the watch
        // (this peer's own confirmation shortens it to about 0.8 s): a peer that did not accuse
        // multicasts no death, and only a CHANGE(suspect) counts here.
        let deadline = System.now().nanos + .millis(8 * Self.periodMillis)
        while System.now().nanos < deadline, loud == nil {
            if let received = suspect.expect(10, { _ in true }) {
                if Self.isPing(received, of: suspect.id) { checked = true }
                if Self.suspects(received, suspect) { loud = received }
            }
            for fake in witnesses + [peer] {
                let received = fake.expect(1) { received in
                    // A helper asked about the silent member says at once that it cannot vouch
                    // for it (§6.1.5): an unanswered PING_REQ would slow the target's probes
                    // for the cases after this one (local health, §6.1.7).
                    if received.unicast, case .pingRequest(let request) = received.message.payload {
                        fake.send(.nack(request))
                    }
                    return Self.suspects(received, suspect)
                }
                if let received { loud = loud ?? received }
            }
        }
        guard checked else { return .skip("the target did not PING the member after CHANGE(dead) about it (case 6.1.3/change-dead-is-checked-then-dead checks that)") }
        return loud == nil ? .pass
            : .fail("the target multicast CHANGE(suspect) about a member whose death it checked as no witness: the group heard the CHANGE(dead) and checks for itself")
    }

    /// A CHANGE to the group calling `member` suspect (at `incarnation`, when given).
    static func suspects(_ received: FakePeer.Received, _ member: FakePeer, at incarnation: UInt32? = nil) -> Bool {
        guard !received.unicast, case .change(let entries) = received.message.payload else { return false }
        return entries.contains { $0.id == member.id && $0.status == .suspect && (incarnation == nil || $0.incarnation == incarnation) }
    }

    /// The ids the target lists alive (from `members`).
    func aliveIDs() -> [NodeID] {
        (memberRows() ?? []).filter { $0["status"]?.stringValue == "alive" }.compactMap { $0["id"]?.stringValue.flatMap(NodeID.init(hex:)) }
    }

    /// Reads `member`'s sockets for up to `millis` in 10-ms turns, the main fake peer's in
    /// between (it answers the target's PINGs), until `match` accepts a datagram.
    func watch(_ member: FakePeer, _ millis: UInt64, _ match: (FakePeer.Received) -> Bool) -> FakePeer.Received? {
        let deadline = System.now().nanos + .millis(millis)
        while System.now().nanos < deadline {
            if let received = member.expect(10, match) { return received }
            peer.drain(1)
        }
        return nil
    }

    /// Runs `body` with a second fake member that PINGed the target once (so the target lists
    /// it alive) and then reads nothing unless the case looks; `entry` makes its entry with a
    /// given status at its incarnation. Afterwards the member comes back at a higher
    /// incarnation, then leaves, so that later cases see a clean view.
    func withSilentMember(_ name: String, probeID: UInt32,
                          _ body: (NodeID, FakePeer, (MemberStatus) -> MemberEntry) -> Verdict) -> Verdict {
        guard let target = peer.targetID else { return .skip("target unknown") }
        guard let member = otherPeer(name) else { return .skip("cannot open a second fake peer") }
        defer {
            member.revive()
            member.drain()
            member.toGroup(.goodbye)
        }
        member.ping(probeID)
        guard listed(member, as: "alive") else { return .fail("a member that PINGed the target is not listed alive within 2 s") }
        let endpoint = peer.unicast.local.with(port: 1)
        return body(target, member) { status in
            MemberEntry(id: member.id, incarnation: member.incarnation, status: status, endpoint: endpoint, name: member.name)
        }
    }

    static func isPing(_ received: FakePeer.Received, of id: NodeID) -> Bool {
        if case .ping(let ping) = received.message.payload { return ping.target == id && received.unicast }
        return false
    }

    /// Whether the target lists `member` with `status` within `millis`, asked every ~20 ms while
    /// the member (and `others`) answer the target's PINGs: a target may list newcomers only once
    /// they settle (§6.1.8, informative; 300 ms by default).
    func listed(_ member: FakePeer, as status: String, within millis: UInt64 = 2_000, answering others: [FakePeer] = []) -> Bool {
        let deadline = System.now().nanos + .millis(millis)
        repeat {
            member.drain()
            for other in others where other !== member { other.drain(1) }
            if self.status(of: member) == status { return true }
        } while System.now().nanos < deadline
        return false
    }

    /// A member's status as the target lists it in `members`.
    func status(of member: FakePeer) -> String? {
        (memberRows() ?? []).first { $0["id"]?.stringValue == member.id.description }?["status"]?.stringValue
    }
}
