/// One round of an election: the start, the silent join, the decision at the end of the
/// window, votes in quorum mode, and leader announcements (Protocol.md §4.3, §6.4).
extension Elections {
    /// The election of `topic`, or a new one when the topic table has room (Protocol.md §6.6):
    /// a full table first forgets a topic with no live leader and no election running.
    mutating func slot(_ topic: String, context: ElectionContext, out: inout Outbox) -> ElectionState? {
        if let election = table[ByteString(topic)] { return election }
        guard Limits.topicBytes.contains(topic.utf8.count) else { return nil }
        if table.count >= config.limits.topics {
            // The lowest stale topic by bytes that no `elect` request waits on: not the first in
            // the dictionary's order, which is seeded per process.
            var stale: ByteString?
            for (key, election) in table where stale.map({ key < $0 }) ?? true {
                let idle = election.phase == .idle
                    || (election.phase == .decided && !(election.leader.map { context.view.isViable($0.node) } ?? false))
                if idle, !context.waiting.isWaiting(key) { stale = key }
            }
            guard let stale else {
                out.drop("topics_full")
                return nil
            }
            table[stale] = nil
        }
        return ElectionState(topic: topic)
    }

    /// Whether `a` wins over `b` by §4.3 (reversed under the test fault `elect-highest`, which
    /// proves that the conformance case can fail).
    func prefers(_ a: Stamp, over b: Stamp) -> Bool {
        config.faults.contains(.electHighest) ? b < a : a < b
    }

    /// The winner among `stamps`.
    func best(_ stamps: some Sequence<Stamp>) -> Stamp? {
        stamps.reduce(nil) { found, next in found.map { prefers(next, over: $0) ? next : $0 } ?? next }
    }

    /// Starts the next term on this peer's own account (an `elect` request, a leader loss, a
    /// retry): the only way a CANDIDACY is sent. A one-member cluster decides at once.
    mutating func startElection(_ topic: String, context: ElectionContext, out: inout Outbox) {
        // The highest term ends elections on this topic: its leader stays (§6.4).
        guard var election = slot(topic, context: context, out: &out), election.term < Limits.maxTerm else { return }
        let now = context.now.nanos
        election.begin(term: election.term + 1, now: now, deadline: now.saturatingAdd(decisionWindow(context.view)))
        // The candidacy's own stamp is the one that competes (Protocol.md §4.3).
        election.addCandidate(config.id, stamp: out.clock.next, name: config.name)
        table[ByteString(topic)] = election
        out.send(.candidacy(Candidacy(term: election.term, topic: topic)), to: context.view.groupDestinations())
        if context.view.liveCount <= 1 { decide(topic, context: context, out: &out) }
    }

    /// Enters `term` on hearing a CANDIDACY of it, silently: this peer's clock is already past
    /// that candidacy's stamp, so a candidacy of its own could never win.
    mutating func joinElection(_ topic: String, term: UInt64, context: ElectionContext, out: inout Outbox) {
        guard var election = slot(topic, context: context, out: &out) else { return }
        let known = table[ByteString(topic)] != nil
        guard !known || term > election.term || (election.phase == .idle && term == election.term) else { return }
        let now = context.now.nanos
        election.begin(term: term, now: now, deadline: now.saturatingAdd(decisionWindow(context.view)))
        table[ByteString(topic)] = election
    }

    /// The end of the decision window: the best candidacy held wins (quorum mode: gets this
    /// peer's vote). Candidates found dead or gone by now do not count.
    mutating func decide(_ topic: String, context: ElectionContext, out: inout Outbox) {
        let key = ByteString(topic)
        let now = context.now.nanos
        table.modify(key) { election in
            election.candidates = election.candidates.filter { $0.key == config.id || context.view.isLive($0.key) }
        }
        guard let election = table[key], election.phase == .collecting else { return }
        if let need = majority, context.view.liveCount < need {
            // Without a quorum, retry at growing intervals (2 s, 4 s, … up to 64 s) so that a
            // minority does not campaign for every topic every two seconds forever.
            let rounds = min(election.failedRounds, 5)
            table.modify(key) { election in
                election.failedRounds = rounds + 1
                election.phase = .idle
            }
            armStart(key, after: now.saturatingAdd(config.electionTimeout.saturatingMultiplied(by: 4) << UInt64(rounds)), view: context.view)
            out.emit(.noQuorum(topic: topic, term: election.term, have: context.view.liveCount, need: need))
            return
        }
        guard let choice = best(election.candidates.map { Stamp($0.value, $0.key) }) else {
            // Every candidate went away: wait for another candidacy until the election timeout,
            // then start the next term (staggered like a leader loss).
            let timeout = election.startedAt.saturatingAdd(config.electionTimeout)
            if now < timeout {
                table.modify(key) { $0.deadline = timeout }
            } else {
                table.modify(key) { $0.phase = .idle }
                armStart(key, after: now, view: context.view)
            }
            return
        }
        if majority != nil {
            vote(topic, for: choice, context: context, out: &out)
        } else {
            adoptLeader(topic, choice, name: election.names[choice.node] ?? "", term: election.term, context: context, out: &out)
        }
    }

    /// Quorum mode: this peer's one vote of the term, by unicast to the candidate it chose.
    mutating func vote(_ topic: String, for choice: Stamp, context: ElectionContext, out: inout Outbox) {
        let key = ByteString(topic)
        guard let election = table[key] else { return }
        table.modify(key) { election in
            election.phase = .voting
            election.deadline = context.now.nanos.saturatingAdd(config.electionTimeout)
        }
        // Never two votes in one term, whatever re-entered it: this is what makes two leaders
        // of one term impossible.
        guard election.votedTerm.map({ $0 < election.term }) ?? true else { return }
        table.modify(key) { election in
            election.votedFor = choice
            election.votedTerm = election.term
        }
        if choice.node == config.id {
            table.modify(key) { _ = $0.votes.insert(config.id) }
            countVotes(topic, context: context, out: &out)
        } else if let endpoint = context.view.endpoint(of: choice.node) {
            let vote = Vote(term: election.term, candidate: choice.node, candidateStamp: choice.value, topic: topic)
            out.send(.vote(vote), to: [.peer(endpoint)])
        }
    }

    /// Quorum mode: a candidate holding votes from a majority (its own included) leads.
    mutating func countVotes(_ topic: String, context: ElectionContext, out: inout Outbox) {
        guard let election = table[ByteString(topic)], let need = majority, election.phase != .decided,
            election.votes.count >= need, let stamp = election.candidates[config.id]
        else { return }
        adoptLeader(topic, Stamp(stamp, config.id), name: config.name, term: election.term, context: context, out: &out)
    }

    /// Records a decided leader; the winner announces itself (and keeps doing so).
    mutating func adoptLeader(_ topic: String, _ stamp: Stamp, name: String, term: UInt64, context: ElectionContext, out: inout Outbox) {
        guard table[ByteString(topic)] != nil else { return }
        var changed = false
        table.modify(ByteString(topic)) { changed = $0.adopt(stamp, name: name, term: term, nextAnnounceAt: context.now.nanos + config.leaderAnnounceInterval) }
        if stamp.node == config.id { announceLeader(topic, now: context.now, context: context, out: &out) }
        if changed {
            out.emit(.leaderChanged(topic: topic, leader: name, leaderID: stamp.node, term: term))
        }
        decided.append(Decision(topic: topic, leader: name, term: term))
    }

    mutating func announceLeader(_ topic: String, now: Now, context: ElectionContext, out: inout Outbox) {
        guard let election = table[ByteString(topic)], let leader = election.leader else { return }
        let announcement = LeaderAnnouncement(term: election.term, leader: leader.node, leaderStamp: leader.value,
            topic: topic, leaderName: election.leaderName ?? config.name)
        out.send(.leader(announcement), to: context.view.groupDestinations())
        let window = decisionWindow(context.view)
        let quick = quickAnnounceCount(context.view)
        table.modify(ByteString(topic)) { election in
            // The first announcements of a term are repeated one, two, four … decision windows
            // apart (as many as the loss measured asks for), then every re-announce interval (§6.4).
            if election.quickAnnounces < quick {
                election.nextAnnounceAt = now.nanos.saturatingAdd(window.saturatingMultiplied(by: 1 << UInt64(min(election.quickAnnounces, 16))))
                election.quickAnnounces += 1
            } else {
                election.nextAnnounceAt = now.nanos.saturatingAdd(config.leaderAnnounceInterval)
            }
        }
    }

    mutating func onLeader(_ announcement: LeaderAnnouncement, replyTo: Endpoint, context: ElectionContext, out: inout Outbox) -> [Decision] {
        let topic = announcement.topic
        let announced = Stamp(announcement.leaderStamp, announcement.leader)
        guard var election = slot(topic, context: context, out: &out) else { return [] }
        if announcement.term < election.term { return [] }
        if announcement.term > election.term || majority != nil {
            // A term we took no part in: its candidacies are unknown here, so the announcement
            // rules. In quorum mode only a candidate holding a majority of the term's votes
            // announces, and there is one such per term.
            if announcement.term > election.term {
                election.term = announcement.term
                election.candidates = [:]
                election.names = [:]
                table[ByteString(topic)] = election
            } else if announced == election.leader && election.phase == .decided {
                return []
            }
            adoptLeader(topic, announced, name: announcement.leaderName, term: announcement.term, context: context, out: &out)
            return takeDecided()
        }
        // Same term: the best of what was announced, what this peer decided and the
        // candidacies it holds wins.
        var choice = announced
        var name = announcement.leaderName
        // (`leader` still holds the previous term's leader until this term is decided.)
        if election.phase == .decided, let mine = election.leader, prefers(mine, over: choice), context.view.isViable(mine.node) {
            choice = mine
            name = election.leaderName ?? ""
        }
        if let held = best(election.candidates.filter({ context.view.isViable($0.key) }).map({ Stamp($0.value, $0.key) })), prefers(held, over: choice) {
            choice = held
            name = election.names[held.node] ?? ""
        }
        guard context.view.isViable(choice.node) else { return [] }
        let wasLeader = election.phase == .decided && election.leader == choice
        if !wasLeader {
            table[ByteString(topic)] = election
            adoptLeader(topic, choice, name: name, term: announcement.term, context: context, out: &out)
        }
        if choice != announced, choice.node == config.id {
            // The announcer missed this peer's better candidacy. Only the better candidate
            // corrects it, by unicast (every peer holding that candidacy would otherwise answer
            // at once), and announces again within a window for the peers that followed the
            // announcer (a group datagram per window at most, whatever arrives).
            let correction = LeaderAnnouncement(term: announcement.term, leader: choice.node, leaderStamp: choice.value,
                topic: topic, leaderName: config.name)
            out.send(.leader(correction), to: .peer(replyTo))
            if wasLeader {
                let soon = context.now.nanos.saturatingAdd(decisionWindow(context.view))
                table.modify(ByteString(topic)) { $0.nextAnnounceAt = min($0.nextAnnounceAt, soon) }
            }
        }
        return takeDecided()
    }
}
