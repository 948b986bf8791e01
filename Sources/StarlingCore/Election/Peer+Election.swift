/// Leader election per topic (Protocol.md §4.3, §6.4): the lowest candidacy stamp wins, ties
/// go to the lower node id; terms only grow; a timeout ends every election.
public struct ElectionState: Sendable {
    public enum Phase: Sendable, Equatable { case idle, collecting, voting, decided }

    public let topic: String
    public internal(set) var term: UInt64 = 0
    public internal(set) var phase: Phase = .idle
    /// Candidacies of the current term: node → candidacy stamp.
    public internal(set) var candidates: [NodeID: UInt64] = [:]
    var names: [NodeID: String] = [:]
    var deadline: UInt64 = 0
    var votes: [NodeID: NodeID] = [:]
    var votedFor: Stamp?
    public internal(set) var leader: Stamp?
    public internal(set) var leaderName: String?
    var nextAnnounceAt: UInt64 = 0
    var retryAt: UInt64?
    /// When this peer entered the current term.
    var startedAt: UInt64 = 0
    /// Elections in a row that found no quorum: each waits twice as long before the next.
    var failedRounds = 0

    init(topic: String) {
        self.topic = topic
    }

    var nextWake: UInt64? {
        var wake: UInt64? = nil
        if phase == .collecting || phase == .voting { wake = deadline }
        if let retryAt { wake = min(wake ?? retryAt, retryAt) }
        if phase == .decided, leader != nil { wake = min(wake ?? nextAnnounceAt, nextAnnounceAt) }
        return wake
    }

    /// The lowest candidacy held, as the ordering of §4.3 says.
    var best: Stamp? {
        candidates.map { Stamp($0.value, $0.key) }.min()
    }
}

extension Peer {
    var majority: Int? { config.quorum.map { $0 / 2 + 1 } }

    /// Starts an election for `topic` at the next term. Returns the actions; a one-member
    /// cluster decides at once.
    public mutating func elect(_ topic: String, now: Now) -> [Action] {
        var actions: [Action] = []
        startElection(topic, term: nil, now: now, into: &actions)
        publish(&actions, now: now)
        return actions
    }

    /// An `elect` request joins an election that began within the last election timeout (another
    /// member's candidacy may have arrived before the request did) instead of starting a new term.
    mutating func electOnRequest(_ topic: String, now: Now, into actions: inout [Action]) {
        if let election = elections[ByteString(topic)], election.phase != .idle, now.nanos &- election.startedAt < config.electionTimeout {
            if election.phase == .decided { answerElectRequests(topic, into: &actions) }
            return
        }
        startElection(topic, term: nil, now: now, into: &actions)
    }

    public func leader(of topic: String) -> (name: String?, id: NodeID?, term: UInt64) {
        guard let election = elections[ByteString(topic)] else { return (nil, nil, 0) }
        return (election.leaderName, election.leader?.node, election.term)
    }

    /// The election of `topic`, or a new one when the topic table has room (Protocol.md §6.6):
    /// a full table first forgets a topic with no live leader and no election running.
    mutating func electionSlot(_ topic: String) -> ElectionState? {
        if let election = elections[ByteString(topic)] { return election }
        if elections.count >= config.limits.topics {
            let stale = elections.first { _, election in
                election.phase == .idle || (election.phase == .decided && !(election.leader.map { isViable($0.node) } ?? false))
            }
            guard let stale, !pendingElectReplies.isWaiting(stale.key) else {
                counters.drop("topics_full")
                return nil
            }
            elections[stale.key] = nil
        }
        return ElectionState(topic: topic)
    }

    mutating func startElection(_ topic: String, term: UInt64?, now: Now, into actions: inout [Action]) {
        guard Limits.topicBytes.contains(topic.utf8.count), var election = electionSlot(topic) else { return }
        // The highest term ends elections on this topic: its leader stays (§6.4).
        guard term != nil || election.term < Limits.maxTerm else { return }
        let newTerm = term ?? election.term + 1
        guard newTerm > election.term || (election.phase == .idle && newTerm >= election.term) else { return }
        election.term = newTerm
        election.phase = .collecting
        election.candidates = [:]
        election.names = [:]
        election.votes = [:]
        election.votedFor = nil
        election.retryAt = nil
        election.deadline = now.nanos + config.electionTimeout
        election.startedAt = now.nanos
        elections[ByteString(topic)] = election
        // The candidacy's own stamp is the one that competes (Protocol.md §4.3).
        let stamp = clock.next
        send(.candidacy(Candidacy(term: newTerm, topic: topic)), to: beatDestinations(), into: &actions)
        elections[ByteString(topic)]?.candidates[config.id] = stamp
        elections[ByteString(topic)]?.names[config.id] = config.name
        checkElection(topic, now: now, into: &actions)
    }

    mutating func onCandidacy(_ candidacy: Candidacy, header: Header, now: Now, into actions: inout [Action]) {
        let topic = candidacy.topic
        let current = elections[ByteString(topic)]?.term ?? 0
        if candidacy.term < current { return }
        if candidacy.term > current || elections[ByteString(topic)]?.phase == .idle || elections[ByteString(topic)] == nil {
            startElection(topic, term: candidacy.term, now: now, into: &actions)
        }
        guard var election = elections[ByteString(topic)], election.term == candidacy.term else { return }
        election.candidates[header.sender] = header.stamp
        election.names[header.sender] = header.name
        elections[ByteString(topic)] = election
        if election.phase == .decided, let leader = election.leader, Stamp(header.stamp, header.sender) < leader {
            // A lower candidacy arrived after deciding: the order still rules.
            adoptLeader(topic, Stamp(header.stamp, header.sender), name: header.name, term: candidacy.term, now: now, into: &actions)
            return
        }
        checkElection(topic, now: now, into: &actions)
    }

    /// Decides once every live member has a candidacy in, or at the deadline with what is held.
    private mutating func checkElection(_ topic: String, now: Now, into actions: inout [Action]) {
        guard let election = elections[ByteString(topic)], election.phase == .collecting else { return }
        let live = members.values.filter { $0.status == .alive }.map(\.id)
        let complete = live.allSatisfy { election.candidates[$0] != nil }
        guard complete || now.nanos >= election.deadline else { return }
        decide(topic, now: now, into: &actions)
    }

    private mutating func decide(_ topic: String, now: Now, into actions: inout [Action]) {
        guard var election = elections[ByteString(topic)] else { return }
        // Candidates found dead or gone by now do not count.
        election.candidates = election.candidates.filter { $0.key == config.id || members[$0.key]?.isLive == true }
        elections[ByteString(topic)] = election
        let ordered = election.candidates.map { Stamp($0.value, $0.key) }.sorted()
        guard let choice = config.faults.contains(.electHighest) ? ordered.last : ordered.first else { return }
        if let need = majority {
            guard election.candidates.count >= need else {
                // Without a quorum, retry at growing intervals (2 s, 4 s, … up to 64 s) so that a
                // minority does not campaign for every topic every two seconds forever.
                let rounds = min(election.failedRounds, 5)
                elections[ByteString(topic)]?.failedRounds = rounds + 1
                elections[ByteString(topic)]?.phase = .idle
                elections[ByteString(topic)]?.retryAt = now.nanos + (config.electionTimeout * 4) << UInt64(rounds)
                actions.append(.emit(.noQuorum(topic: topic, term: election.term, have: election.candidates.count, need: need)))
                return
            }
            elections[ByteString(topic)]?.phase = .voting
            elections[ByteString(topic)]?.votedFor = choice
            elections[ByteString(topic)]?.deadline = now.nanos + config.electionTimeout
            let vote = Vote(term: election.term, candidate: choice.node, candidateStamp: choice.value, topic: topic)
            if choice.node == config.id { elections[ByteString(topic)]?.votes[config.id] = config.id }
            send(.vote(vote), to: beatDestinations(), into: &actions)
            countVotes(topic, now: now, into: &actions)
            return
        }
        adoptLeader(topic, choice, name: election.names[choice.node] ?? "", term: election.term, now: now, into: &actions)
    }

    mutating func onVote(_ vote: Vote, header: Header, now: Now, into actions: inout [Action]) {
        guard var election = elections[ByteString(vote.topic)], vote.term == election.term, vote.candidate == config.id else { return }
        election.votes[header.sender] = vote.candidate
        elections[ByteString(vote.topic)] = election
        countVotes(vote.topic, now: now, into: &actions)
    }

    private mutating func countVotes(_ topic: String, now: Now, into actions: inout [Action]) {
        guard let election = elections[ByteString(topic)], let need = majority, election.phase == .voting,
            election.votedFor?.node == config.id, election.votes.count >= need,
            let stamp = election.candidates[config.id]
        else { return }
        adoptLeader(topic, Stamp(stamp, config.id), name: config.name, term: election.term, now: now, into: &actions)
    }

    /// Records a decided leader; the winner announces itself (and keeps doing so).
    private mutating func adoptLeader(_ topic: String, _ stamp: Stamp, name: String, term: UInt64, now: Now, into actions: inout [Action]) {
        guard var election = elections[ByteString(topic)] else { return }
        let changed = election.leader != stamp || election.phase != .decided || election.term != term
        election.term = term
        election.phase = .decided
        election.leader = stamp
        election.leaderName = name
        election.retryAt = nil
        election.failedRounds = 0
        election.nextAnnounceAt = now.nanos + config.leaderAnnounceInterval
        elections[ByteString(topic)] = election
        if stamp.node == config.id { announceLeader(topic, now: now, into: &actions) }
        if changed {
            actions.append(.emit(.leaderChanged(topic: topic, leader: name, leaderID: stamp.node, term: term)))
        }
        answerElectRequests(topic, into: &actions)
    }

    private mutating func announceLeader(_ topic: String, now: Now, into actions: inout [Action]) {
        guard let election = elections[ByteString(topic)], let leader = election.leader else { return }
        let announcement = LeaderAnnouncement(term: election.term, leader: leader.node, leaderStamp: leader.value,
            topic: topic, leaderName: election.leaderName ?? config.name)
        send(.leader(announcement), to: beatDestinations(), into: &actions)
        elections[ByteString(topic)]?.nextAnnounceAt = now.nanos + config.leaderAnnounceInterval
    }

    mutating func onLeader(_ announcement: LeaderAnnouncement, header: Header, replyTo: Endpoint, now: Now, into actions: inout [Action]) {
        let topic = announcement.topic
        let announced = Stamp(announcement.leaderStamp, announcement.leader)
        guard var election = electionSlot(topic) else { return }
        if announcement.term < election.term { return }
        if announcement.term > election.term {
            // A term we took no part in: its candidacies are unknown here, so the announcement rules.
            election.term = announcement.term
            election.candidates = [:]
            election.names = [:]
            elections[ByteString(topic)] = election
            adoptLeader(topic, announced, name: announcement.leaderName, term: announcement.term, now: now, into: &actions)
            return
        }
        // Same term: the lowest of what was announced, what this peer decided and the
        // candidacies it holds wins; an announcer that missed a lower one is told.
        var choice = announced
        var name = announcement.leaderName
        // (`leader` still holds the previous term's leader until this term is decided.)
        if election.phase == .decided, let mine = election.leader, mine < choice, isViable(mine.node) {
            choice = mine
            name = election.leaderName ?? ""
        }
        if let best = election.candidates.filter({ isViable($0.key) }).map({ Stamp($0.value, $0.key) }).min(), best < choice {
            choice = best
            name = election.names[best.node] ?? ""
        }
        guard isViable(choice.node) else { return }
        if choice != election.leader || election.phase != .decided {
            elections[ByteString(topic)] = election
            adoptLeader(topic, choice, name: name, term: announcement.term, now: now, into: &actions)
        }
        if choice < announced {
            let correction = LeaderAnnouncement(term: announcement.term, leader: choice.node, leaderStamp: choice.value,
                topic: topic, leaderName: name.isEmpty ? config.name : name)
            send(.leader(correction), to: .peer(replyTo), into: &actions)
        }
    }

    /// A leader can only be this peer or a member it holds alive or suspect.
    func isViable(_ node: NodeID) -> Bool { node == config.id || members[node]?.isLive == true }

    mutating func tickElections(now: Now, into actions: inout [Action]) {
        for key in Array(elections.keys) {
            let topic = key.string
            guard let election = elections[ByteString(topic)] else { continue }
            switch election.phase {
            case .collecting where now.nanos >= election.deadline:
                decide(topic, now: now, into: &actions)
            case .voting where now.nanos >= election.deadline:
                // No majority of votes in time: try again at a higher term.
                elections[ByteString(topic)]?.phase = .idle
                elections[ByteString(topic)]?.retryAt = now.nanos + config.electionTimeout
            case .decided where election.leader?.node == config.id && now.nanos >= election.nextAnnounceAt:
                announceLeader(topic, now: now, into: &actions)
            case .decided where now.nanos >= election.nextAnnounceAt:
                elections[ByteString(topic)]?.nextAnnounceAt = now.nanos + config.leaderAnnounceInterval
            default:
                break
            }
            if let retryAt = elections[ByteString(topic)]?.retryAt, now.nanos >= retryAt {
                elections[ByteString(topic)]?.retryAt = nil
                startElection(topic, term: nil, now: now, into: &actions)
            }
        }
    }

    /// A new member may complete an election that waits for it; nothing else changes.
    mutating func onMemberJoined(_ id: NodeID, now: Now, into actions: inout [Action]) {}

    /// A dead or departed member: drop it from open elections, and re-elect where it led. In
    /// quorum mode a peer that no longer sees a majority holds no leader at all and says so.
    mutating func onMemberGone(_ id: NodeID, now: Now, into actions: inout [Action]) {
        if let need = majority, liveCount < need {
            for key in Array(elections.keys) where elections[key]?.leader != nil {
                let topic = key.string
                let term = elections[key]?.term ?? 0
                elections[ByteString(topic)]?.leader = nil
                elections[ByteString(topic)]?.leaderName = nil
                elections[ByteString(topic)]?.phase = .idle
                elections[ByteString(topic)]?.retryAt = now.nanos + config.electionTimeout * 4
                actions.append(.emit(.leaderChanged(topic: topic, leader: nil, leaderID: nil, term: term)))
                actions.append(.emit(.noQuorum(topic: topic, term: term, have: liveCount, need: need)))
            }
            return
        }
        for key in Array(elections.keys) {
            let topic = key.string
            guard let election = elections[ByteString(topic)] else { continue }
            if election.phase == .collecting {
                checkElection(topic, now: now, into: &actions)
            } else if election.phase == .decided, election.leader?.node == id {
                elections[ByteString(topic)]?.leader = nil
                elections[ByteString(topic)]?.leaderName = nil
                actions.append(.emit(.leaderChanged(topic: topic, leader: nil, leaderID: nil, term: election.term)))
                if config.autoReelect { startElection(topic, term: nil, now: now, into: &actions) }
            }
        }
    }
}
