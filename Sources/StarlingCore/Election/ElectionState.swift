/// Leader election per topic (Protocol.md §4.3, §6.4): the lowest candidacy stamp wins, ties
/// go to the lower node id; terms only grow; a decision window ends every election.
public struct ElectionState: Sendable {
    public enum Phase: Sendable, Equatable { case idle, collecting, voting, decided }

    public let topic: String
    public internal(set) var term: UInt64 = 0
    public internal(set) var phase: Phase = .idle
    /// Candidacies of the current term: node → candidacy stamp. Only peers that started the
    /// term on their own send one (§6.4): a peer that joined on hearing one stays silent.
    public internal(set) var candidates: [NodeID: UInt64] = [:]
    var names: [NodeID: String] = [:]
    /// Collecting: when to decide (the decision window, or the election timeout while no live
    /// candidacy is held). Voting: when to give up waiting for a majority of votes.
    var deadline: UInt64 = 0
    /// Quorum mode: the peers that voted for this peer's candidacy of the current term.
    var votes: Set<NodeID> = []
    var votedFor: Stamp?
    /// The last term this peer voted in. Not reset on entering a term: a peer that re-enters
    /// a term it voted in (idle after a failed round, then a late CANDIDACY) never votes twice.
    var votedTerm: UInt64?
    public internal(set) var leader: Stamp?
    public internal(set) var leaderName: String?
    var nextAnnounceAt: UInt64 = 0
    /// LEADERs this peer sent quickly after winning the term (§6.4): repeats that reach a
    /// member that lost the CANDIDACY and the first LEADER within milliseconds, not 2 s.
    var quickAnnounces = 0
    /// The armed start of the next term (a retry, or a staggered start after a leader loss);
    /// entering a term or adopting a leader disarms it.
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

    /// Enters `term` and collects candidacies until `deadline`.
    mutating func begin(term: UInt64, now: UInt64, deadline: UInt64) {
        self.term = term
        phase = .collecting
        candidates = [:]
        names = [:]
        votes = []
        votedFor = nil
        retryAt = nil
        self.deadline = deadline
        startedAt = now
    }

    /// Records a candidacy (this peer's own included) for the current term.
    mutating func addCandidate(_ node: NodeID, stamp: UInt64, name: String) {
        candidates[node] = stamp
        names[node] = name
    }

    /// Goes idle; the next term starts at `retryAt`.
    mutating func pause(until retryAt: UInt64) {
        phase = .idle
        self.retryAt = retryAt
    }

    /// Forgets the leader (dead, gone, or no quorum).
    mutating func dropLeader() {
        leader = nil
        leaderName = nil
    }

    /// Records a decided leader; true when that is news.
    mutating func adopt(_ stamp: Stamp, name: String, term: UInt64, nextAnnounceAt: UInt64) -> Bool {
        let changed = leader != stamp || phase != .decided || self.term != term
        if changed { quickAnnounces = 0 }
        self.term = term
        phase = .decided
        leader = stamp
        leaderName = name
        retryAt = nil
        failedRounds = 0
        self.nextAnnounceAt = nextAnnounceAt
        return changed
    }

    /// Whether a tick at `now` has work to do for this topic.
    func hasDueWork(now: UInt64) -> Bool {
        guard let wake = nextWake else { return false }
        return now >= wake
    }

    /// Moves whatever is due at `now` to `later` (a tick whose topic budget is spent).
    mutating func postponeDueWork(now: UInt64, to later: UInt64) {
        if (phase == .collecting || phase == .voting), deadline <= now { deadline = later }
        if phase == .decided, nextAnnounceAt <= now { nextAnnounceAt = later }
        if let retryAt, retryAt <= now { self.retryAt = later }
    }
}
