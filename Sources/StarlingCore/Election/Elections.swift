/// Leader election for every topic (Protocol.md §4.3, §6.4). It reads the membership view as a
/// value (``ElectionContext``) and hears of members that went away as ``MembershipChange``
/// values; nothing outside writes its table. Each input returns the decisions it reached, with
/// which the control plane answers the `elect` requests waiting on them.
struct Elections: Sendable {
    let config: PeerConfig
    /// Keyed by topic bytes (``ByteString``).
    var table: [ByteString: ElectionState] = [:]
    /// Topics decided by the call in progress, returned by it.
    var decided: [Decision] = []
    /// Jitter of staggered starts beyond the ring's tiers.
    var rng: SplitMix64

    init(config: PeerConfig) {
        self.config = config
        rng = SplitMix64(seed: config.randomSeed ^ 0xE1EC_7104_5EED_0001)
    }

    var majority: Int? { config.quorum.map { $0 / 2 + 1 } }

    // Inlined into Peer.readNextDeadline(), which then reads it in place, not from a copy.
    @inline(__always) var nextDeadline: UInt64? {
        var deadline: UInt64?
        for election in table.values { if let at = election.nextWake { deadline = min(deadline ?? at, at) } }
        return deadline
    }

    func leader(of topic: String) -> (name: String?, id: NodeID?, term: UInt64) {
        guard let election = table[ByteString(topic)] else { return (nil, nil, 0) }
        return (election.leaderName, election.leader?.node, election.term)
    }

    mutating func takeDecided() -> [Decision] {
        guard !decided.isEmpty else { return [] }
        defer { decided = [] }
        return decided
    }

    // MARK: Inputs

    /// Starts an election for `topic` at the next term; a one-member cluster decides at once.
    mutating func elect(_ topic: String, context: ElectionContext, out: inout Outbox) -> [Decision] {
        startElection(topic, context: context, out: &out)
        return takeDecided()
    }

    /// An `elect` request joins an election that began within the last election timeout (another
    /// member's candidacy may have arrived before the request did) instead of starting a new term.
    /// `staggered`: the request went to many agents at once (an empty target or a pattern), so,
    /// as after a leader loss, only the term's electors start at once and the others arm a
    /// staggered start that the electors' CANDIDACY disarms; else `elect` on 10,000 agents
    /// would send 10,000 candidacies.
    mutating func electOnRequest(_ topic: String, staggered: Bool = false, context: ElectionContext, out: inout Outbox) -> [Decision] {
        if let election = table[ByteString(topic)], election.phase != .idle, election.phase != .decided || election.leader != nil,
           context.now.nanos &- election.startedAt < config.electionTimeout {
            return election.phase == .decided ? [Decision(topic: topic, leader: election.leaderName, term: election.term)] : []
        }
        if staggered, var election = slot(topic, context: context, out: &out), election.term < Limits.maxTerm,
           (startRank(topic: topic, term: election.term + 1, view: context.view) ?? Int.max) >= electorCount {
            if election.retryAt == nil {
                election.retryAt = context.now.nanos.saturatingAdd(startDelay(topic: topic, term: election.term + 1, view: context.view))
            }
            table[ByteString(topic)] = election
            return []
        }
        startElection(topic, context: context, out: &out)
        return takeDecided()
    }

    /// A CANDIDACY: a term this peer has not entered is joined silently (§6.4); a candidacy
    /// better than the leader already decided for its term still wins (not in quorum mode,
    /// where the leader is whoever holds a majority of the term's votes).
    mutating func onCandidacy(_ candidacy: Candidacy, header: Header, context: ElectionContext, out: inout Outbox) -> [Decision] {
        let topic = candidacy.topic
        let key = ByteString(topic)
        let current = table[key]
        if candidacy.term < current?.term ?? 0 { return [] }
        if current == nil || candidacy.term > current?.term ?? 0 || current?.phase == .idle {
            joinElection(topic, term: candidacy.term, context: context, out: &out)
        }
        guard let election = table[key], election.term == candidacy.term else { return takeDecided() }
        table.modify(key) { $0.addCandidate(header.sender, stamp: header.stamp, name: header.name) }
        let stamp = Stamp(header.stamp, header.sender)
        if majority == nil, election.phase == .decided, let leader = election.leader, prefers(stamp, over: leader) {
            adoptLeader(topic, stamp, name: header.name, term: candidacy.term, context: context, out: &out)
        }
        return takeDecided()
    }

    /// Quorum mode: a VOTE for this peer's candidacy of the current term.
    mutating func onVote(_ vote: Vote, from sender: NodeID, context: ElectionContext, out: inout Outbox) -> [Decision] {
        let key = ByteString(vote.topic)
        guard majority != nil, let election = table[key], vote.term == election.term, vote.candidate == config.id,
            election.candidates[config.id] == vote.candidateStamp
        else { return [] }
        table.modify(key) { _ = $0.votes.insert(sender) }
        countVotes(vote.topic, context: context, out: &out)
        return takeDecided()
    }

    /// Topics whose due work (a decision, a re-announcement, a start) one tick carries out; the
    /// others wait a millisecond. Each such step can send a datagram to every member (without
    /// multicast), so 256 topics falling due together would otherwise make one tick send
    /// 256 × N datagrams (found by the stateful fuzzer, Protocol.md §6.6).
    static let topicsPerTick = 16

    mutating func tick(context: ElectionContext, out: inout Outbox) -> [Decision] {
        let now = context.now
        var budget = Self.topicsPerTick
        // In topic order (as bytes), not the dictionary's (seeded per process): which topics get
        // this tick's budget must not depend on the process.
        for key in table.keys.sorted() {
            let topic = key.string
            guard let election = table[key] else { continue }
            // A minority that regained a majority elects at once instead of waiting out its
            // backoff: its terms ran past the majority leader's, whose LEADER it ignores (§6.4).
            if let need = majority, election.failedRounds > 0, election.phase == .idle, election.leader == nil,
               let retryAt = election.retryAt, retryAt > now.nanos, context.view.liveCount >= need {
                table.modify(key) { election in
                    election.retryAt = now.nanos
                    election.failedRounds = 0
                }
            }
            if budget == 0 {
                table.modify(key) { $0.postponeDueWork(now: now.nanos, to: now.nanos + 1_000_000) }
                continue
            }
            if election.hasDueWork(now: now.nanos) { budget -= 1 }
            switch election.phase {
            case .collecting where now.nanos >= election.deadline:
                decide(topic, context: context, out: &out)
            case .voting where now.nanos >= election.deadline:
                // No leader announced in time. A candidate tries again at a higher term once a
                // winner it missed has had time to announce itself again; a mere voter starts
                // nothing while the candidate it voted for lives (that candidate retries if it
                // must): a voter that missed the winner's LEADER would otherwise depose it, and
                // at 10 % loss one of 60 voters nearly always misses it.
                table.modify(key) { $0.phase = .idle }
                let votedForLives = election.votedFor.map { context.view.isViable($0.node) } ?? false
                if election.candidates[config.id] != nil || !votedForLives {
                    let wait = config.leaderAnnounceInterval.saturatingAdd(config.electionTimeout)
                    armStart(key, after: now.nanos.saturatingAdd(votedForLives ? wait : 0), view: context.view)
                }
            case .decided where election.leader?.node == config.id && now.nanos >= election.nextAnnounceAt:
                announceLeader(topic, now: now, context: context, out: &out)
            case .decided where now.nanos >= election.nextAnnounceAt:
                table.modify(key) { $0.nextAnnounceAt = now.nanos + config.leaderAnnounceInterval }
            default:
                break
            }
            if let retryAt = table[key]?.retryAt, now.nanos >= retryAt {
                table.modify(key) { $0.retryAt = nil }
                startElection(topic, context: context, out: &out)
            }
        }
        return takeDecided()
    }

    /// A member went dead or left: re-elect where it led. In quorum mode a peer that no longer
    /// sees a majority holds no leader at all and says so. The whole cluster hears of a death
    /// from one multicast CHANGE at the same moment, so the next term is started by the
    /// term's electors only, the others arming a staggered start (Elections+Starts.swift).
    /// What this sends waits for the next timer pass (within its topic budget): a thousand
    /// members gone in one pass, each a leader of some topic, must not make every topic start
    /// at once (found by the stateful fuzzer). So it decides nothing itself: the decisions come
    /// out of ``tick(context:out:)``. Open elections drop gone candidates when they decide.
    mutating func apply(_ change: MembershipChange, context: ElectionContext, out: inout Outbox) {
        guard case .gone(let id) = change else { return }
        let now = context.now
        let liveCount = context.view.liveCount
        if let need = majority, liveCount < need {
            for key in table.keys.sorted() where table[key]?.leader != nil {
                let topic = key.string
                let term = table[key]?.term ?? 0
                table.modify(key) { election in
                    election.dropLeader()
                    election.phase = .idle
                }
                armStart(key, after: now.nanos.saturatingAdd(config.electionTimeout.saturatingMultiplied(by: 4)), view: context.view)
                out.emit(.leaderChanged(topic: topic, leader: nil, leaderID: nil, term: term))
                out.emit(.noQuorum(topic: topic, term: term, have: liveCount, need: need))
            }
            return
        }
        for key in table.keys.sorted() {
            guard let election = table[key] else { continue }
            if election.phase == .decided && election.leader?.node == id {
                table.modify(key) { $0.dropLeader() }
                if config.autoReelect { armStart(key, after: now.nanos, view: context.view) }
                out.emit(.leaderChanged(topic: key.string, leader: nil, leaderID: nil, term: election.term))
            } else if election.phase == .idle, election.leader == nil, election.retryAt == nil, election.votedFor?.node == id {
                // Quorum mode: a voter left waiting on the candidate it voted for (see tick).
                armStart(key, after: now.nanos, view: context.view)
            }
        }
    }
}

/// A decision reached by an input: the `elect` requests waiting on its topic are answered with it.
struct Decision: Sendable, Equatable {
    let topic: String
    let leader: String?
    let term: UInt64
}

/// What an election reads of the rest of the peer, as values taken just before the call.
struct ElectionContext: Sendable {
    let now: Now
    let view: MemberView
    /// `elect` requests waiting for a decision: their topics are not forgotten to make room.
    let waiting: ElectWaiters
}
