/// Each message to the component that owns it, and the values components need of each other.
extension Peer {
    mutating func dispatch(_ message: Message, replyTo: Endpoint, now: Now) {
        let header = message.header
        switch message.payload {
        case .controlRequest(let request):
            onControlRequest(request, header: header, replyTo: replyTo, now: now)
            return
        case .controlReply(let reply):
            requester.onReply(reply, header: header, replyTo: replyTo, now: now, out: &outbox)
            return
        case .goodbye:
            apply(membership.onGoodbye(header, now: now, out: &outbox), now: now)
            return
        default:
            break
        }
        // Every other type comes from a peer: it proves the sender alive.
        // Parsed once: a member heard first-hand joins with them, and they are merged below.
        let senderTags = message.senderTags
        membership.heardFrom(header, at: replyTo, tags: senderTags, type: message.payload.type, now: now, digest: sync.revoked.digest, out: &outbox)
        apply(membership.takeChanges(), now: now)
        var answeredAsked = false
        if !membership.asked.isEmpty {
            // The view owed to a newcomer whose ANNOUNCE waited counts against its answer budget
            // like the answer it defers, without a check: the ANNOUNCE passed it when it came
            // (a request's answers are charged by the caller, with this one in them).
            let sender = header.sender
            if message.payload.type.isRequest {
                answeredAsked = membership.answerAsked(sender, replyTo: replyTo, now: now, out: &outbox)
            } else {
                answer(to: replyTo, now: now, checked: false) { $0.membership.answerAsked(sender, replyTo: replyTo, now: now, out: &$0.outbox) }
            }
        }
        // A joiner's mingle (HELLO, alone or carried, and its pulls) is answered whoever sends
        // it, a sender refused by the rate included (§6.6): it adds no row, and a joiner left
        // unanswered multicast its HELLO again and again, each copy to every peer (at 5,000
        // started over 10 s, 29 million HELLO copies against 26 million ANNOUNCEs). A carried
        // HELLO's one-datagram reply goes before the view's pages, which may fill the buffer.
        switch message.payload {
        case .announce: if let hello = message.carriedHello { answerHello(hello, from: header.sender, replyTo: replyTo) }
        case .hello(let hello): answerHello(hello, from: header.sender, replyTo: replyTo)
        case .pageRequest(let request): sync.onPageRequest(request, replyTo: replyTo, out: &outbox)
        case .digestRequest(let requestID): sync.onDigestRequest(requestID, replyTo: replyTo, out: &outbox)
        default: break
        }
        // A sender the view has no room for is heard no further, except that a PING to this
        // peer is still answered: it proves this peer alive to a member that holds it, and
        // silence would have that member (and its witnesses) declare this peer dead.
        guard membership.members[header.sender] != nil else {
            // Refused by the rate, it waits (WaitingRoom.swift); if this peer is one of its
            // responders, it answers the ANNOUNCE once the newcomer is admitted.
            if case .announce = message.payload { membership.noteRefusedAnnounce(header.sender) }
            if case .ping(let ping) = message.payload { membership.answerPing(ping, replyTo: replyTo, digest: sync.revoked.digest, out: &outbox) }
            return
        }
        let sender = header.sender
        let digest = sync.revoked.digest
        switch message.payload {
        case .announce(let announcement):
            // The answer owed since a refused copy goes whatever the ring says now, once: not
            // again when the PING from the waiting room drew this ANNOUNCE and just sent it.
            if !answeredAsked {
                membership.answerAnnounce(from: sender, counted: announcement.memberCount, owed: membership.waiting.guests[sender]?.owed,
                    replyTo: replyTo, now: now, out: &outbox)
            }
            membership.waiting.leave(sender)
        case .ping(let ping):
            apply(membership.onPing(ping, from: sender, replyTo: replyTo, now: now, digest: digest, out: &outbox), now: now)
            membership.noteListedTags(message.listedTags, on: ping.piggyback, out: &outbox)
            pullIfDiverged(sender, now: now)
        case .ack(let ack):
            apply(membership.onAck(ack, from: sender, replyTo: replyTo, now: now, digest: digest, out: &outbox), now: now)
            membership.noteListedTags(message.listedTags, on: ack.piggyback, out: &outbox)
            pullIfDiverged(sender, now: now)
        case .pingRequest(let request): membership.onPingRequest(request, replyTo: replyTo, now: now, digest: digest, out: &outbox)
        case .nack(let nack): membership.onNack(nack)
        case .change(let entries):
            apply(membership.onChange(entries, from: sender, replyTo: replyTo, now: now, digest: digest, out: &outbox), now: now)
        case .members(let page):
            merge(page.entries, source: replyTo.ip, joinView: true, now: now)
            membership.noteListedTags(message.listedTags, on: page.entries, out: &outbox)
            if page.replyWanted, page.page == 0 { membership.sendSlice(to: replyTo, replyWanted: false, out: &outbox) }
            membership.correctStaleEntries(page.entries, to: replyTo, out: &outbox)
        case .helloReply(let reply):
            merge(reply.members, source: replyTo.ip, joinView: true, now: now)
            sync.onHelloReply(reply, from: sender, replyTo: replyTo, now: now, out: &outbox)
        case .page(let page): sync.onPage(page, from: sender, now: now, out: &outbox)
        case .digestReply(let reply): sync.onDigestReply(reply, from: sender, now: now, out: &outbox)
        case .candidacy(let candidacy): answerElectRequests(leadership.onCandidacy(candidacy, header: header, context: electionContext(now), out: &outbox))
        case .leader(let leader): answerElectRequests(leadership.onLeader(leader, replyTo: replyTo, context: electionContext(now), out: &outbox))
        case .vote(let vote): answerElectRequests(leadership.onVote(vote, from: sender, context: electionContext(now), out: &outbox))
        case .userEvent(let event): onUserEvent(event, header: header, replyTo: replyTo, now: now)
        case .hello, .pageRequest, .digestRequest, .controlRequest, .controlReply, .goodbye: break
        }
        if let tags = senderTags { membership.noteTags(tags, of: sender, at: header.incarnation, out: &outbox) }
    }

    /// A joiner's HELLO, sent alone or carried by its first ANNOUNCE: its responders answer.
    private mutating func answerHello(_ hello: Hello, from sender: NodeID, replyTo: Endpoint) {
        sync.onHello(hello, from: sender, replyTo: replyTo, responders: membership.responders(for: sender), view: membership.view, out: &outbox)
    }

    /// Pulls the sender's revoked entries when its digests keep differing from ours.
    private mutating func pullIfDiverged(_ id: NodeID, now: Now) {
        if sync.mayPull(from: id, now: now), let endpoint = membership.takeDiverged(id) {
            sync.startPull(from: id, at: endpoint, forMingle: false, now: now, out: &outbox)
        }
    }

    /// Second-hand entries, one at a time: each change reaches the elections before the next entry.
    private mutating func merge(_ entries: [MemberEntry], source: IPAddress, joinView: Bool, now: Now) {
        guard !entries.isEmpty else { return }
        let digest = sync.revoked.digest
        for entry in entries {
            membership.merge(entry, source: source, from: nil, joinView: joinView, now: now, digest: digest, out: &outbox)
            apply(membership.takeChanges(), now: now)
        }
    }

    /// Hands membership changes to the components that act on them.
    mutating func apply(_ changes: [MembershipChange], now: Now) {
        for change in changes {
            leadership.apply(change, context: electionContext(now), out: &outbox)
        }
    }

    /// Answers the `elect` requests waiting on the decisions just reached.
    mutating func answerElectRequests(_ decisions: [Decision]) {
        for decision in decisions {
            responder.answerElectRequests(decision, liveCount: membership.liveCount, out: &outbox)
        }
    }

    func electionContext(_ now: Now) -> ElectionContext {
        ElectionContext(now: now, view: membership.view, waiting: responder.electWaiters)
    }
}
