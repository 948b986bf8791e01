/// One round of an election: candidacies, the decision, votes in quorum mode, and leader
/// announcements (Protocol.md §4.3, §6.4).
extension Elections {
    /// The election of `topic`, or a new one when the topic table has room (Protocol.md §6.6):
    /// a full table first forgets a topic with no live leader and no election running.
    mutating func slot(_ topic: String, context: ElectionContext, out: inout Outbox) -> ElectionState? {
        if let election = table[ByteString(topic)] { return election }
        if table.count >= config.limits.topics {
            let stale = table.first { _, election in
                election.phase == .idle || (election.phase == .decided && !(election.leader.map { context.view.isViable($0.node) } ?? false))
            }
            guard let stale, !context.waiting.isWaiting(stale.key) else {
                out.drop("topics_full")
                return nil
            }
            table[stale.key] = nil
        }
        return ElectionState(topic: topic)
    }

    mutating func startElection(_ topic: String, term: UInt64?, context: ElectionContext, out: inout Outbox) {
        guard Limits.topicBytes.contains(topic.utf8.count), var election = slot(topic, context: context, out: &out) else { return }
        // The highest term ends elections on this topic: its leader stays (§6.4).
        guard term != nil || election.term < Limits.maxTerm else { return }
        let newTerm = term ?? election.term + 1
        guard newTerm > election.term || (election.phase == .idle && newTerm >= election.term) else { return }
        election.begin(term: newTerm, now: context.now.nanos, deadline: context.now.nanos + config.electionTimeout)
        // The candidacy's own stamp is the one that competes (Protocol.md §4.3).
        election.addCandidate(config.id, stamp: out.clock.next, name: config.name)
        table[ByteString(topic)] = election
        out.send(.candidacy(Candidacy(term: newTerm, topic: topic)), to: context.view.groupDestinations())
        checkElection(topic, context: context, out: &out)
    }

    /// Decides once every live member has a candidacy in, or at the deadline with what is held.
    mutating func checkElection(_ topic: String, context: ElectionContext, out: inout Outbox) {
        guard let election = table[ByteString(topic)], election.phase == .collecting else { return }
        // Fewer candidacies than alive members (and this peer) cannot cover them: no scan of the
        // view per CANDIDACY while an election fills up.
        let complete = election.candidates.count > context.view.aliveCount
            && context.view.members.values.allSatisfy { $0.status != .alive || election.candidates[$0.id] != nil }
        guard complete || context.now.nanos >= election.deadline else { return }
        decide(topic, context: context, out: &out)
    }

    mutating func decide(_ topic: String, context: ElectionContext, out: inout Outbox) {
        let now = context.now
        // Candidates found dead or gone by now do not count.
        table.modify(ByteString(topic)) { election in
            election.candidates = election.candidates.filter { $0.key == config.id || context.view.isLive($0.key) }
        }
        guard let election = table[ByteString(topic)] else { return }
        let ordered = election.candidates.map { Stamp($0.value, $0.key) }.sorted()
        guard let choice = config.faults.contains(.electHighest) ? ordered.last : ordered.first else { return }
        if let need = majority {
            guard election.candidates.count >= need else {
                // Without a quorum, retry at growing intervals (2 s, 4 s, … up to 64 s) so that a
                // minority does not campaign for every topic every two seconds forever.
                let rounds = min(election.failedRounds, 5)
                table.modify(ByteString(topic)) { election in
                    election.failedRounds = rounds + 1
                    election.pause(until: now.nanos + (config.electionTimeout * 4) << UInt64(rounds))
                }
                out.emit(.noQuorum(topic: topic, term: election.term, have: election.candidates.count, need: need))
                return
            }
            table.modify(ByteString(topic)) { election in
                election.phase = .voting
                election.votedFor = choice
                election.deadline = now.nanos + config.electionTimeout
                if choice.node == config.id { election.votes[config.id] = config.id }
            }
            let vote = Vote(term: election.term, candidate: choice.node, candidateStamp: choice.value, topic: topic)
            out.send(.vote(vote), to: context.view.groupDestinations())
            countVotes(topic, context: context, out: &out)
            return
        }
        adoptLeader(topic, choice, name: election.names[choice.node] ?? "", term: election.term, context: context, out: &out)
    }

    mutating func countVotes(_ topic: String, context: ElectionContext, out: inout Outbox) {
        guard let election = table[ByteString(topic)], let need = majority, election.phase == .voting,
            election.votedFor?.node == config.id, election.votes.count >= need,
            let stamp = election.candidates[config.id]
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
        table.modify(ByteString(topic)) { $0.nextAnnounceAt = now.nanos + config.leaderAnnounceInterval }
    }

    mutating func onLeader(_ announcement: LeaderAnnouncement, replyTo: Endpoint, context: ElectionContext, out: inout Outbox) -> [Decision] {
        let topic = announcement.topic
        let announced = Stamp(announcement.leaderStamp, announcement.leader)
        guard var election = slot(topic, context: context, out: &out) else { return [] }
        if announcement.term < election.term { return [] }
        if announcement.term > election.term {
            // A term we took no part in: its candidacies are unknown here, so the announcement rules.
            election.term = announcement.term
            election.candidates = [:]
            election.names = [:]
            table[ByteString(topic)] = election
            adoptLeader(topic, announced, name: announcement.leaderName, term: announcement.term, context: context, out: &out)
            return takeDecided()
        }
        // Same term: the lowest of what was announced, what this peer decided and the
        // candidacies it holds wins; an announcer that missed a lower one is told.
        var choice = announced
        var name = announcement.leaderName
        // (`leader` still holds the previous term's leader until this term is decided.)
        if election.phase == .decided, let mine = election.leader, mine < choice, context.view.isViable(mine.node) {
            choice = mine
            name = election.leaderName ?? ""
        }
        if let best = election.candidates.filter({ context.view.isViable($0.key) }).map({ Stamp($0.value, $0.key) }).min(), best < choice {
            choice = best
            name = election.names[best.node] ?? ""
        }
        guard context.view.isViable(choice.node) else { return [] }
        if choice != election.leader || election.phase != .decided {
            table[ByteString(topic)] = election
            adoptLeader(topic, choice, name: name, term: announcement.term, context: context, out: &out)
        }
        if choice < announced {
            let correction = LeaderAnnouncement(term: announcement.term, leader: choice.node, leaderStamp: choice.value,
                topic: topic, leaderName: name.isEmpty ? config.name : name)
            out.send(.leader(correction), to: .peer(replyTo))
        }
        return takeDecided()
    }
}
