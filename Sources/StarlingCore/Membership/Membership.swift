/// Membership (Protocol.md §3.1, §6.1): the view of the other members, kept by SWIM probing
/// with Lifeguard's refinements. Failures are found by ``Probing`` (one member per period),
/// checked by witnesses, decided by ``Suspicion`` timeouts held in a ``Deadlines`` heap, and
/// changes are multicast once in a CHANGE and piggybacked on PING and ACK (``Dissemination``).
/// What it needs of the rest of the peer (the revoked-set digest) comes in as values, and the
/// changes other components act on go out as ``MembershipChange`` values.
struct Membership: Sendable {
    let config: PeerConfig
    var members = MemberTable()
    /// Alive or suspect members (see ``liveCount``); changed only through `store(_:for:)`.
    private(set) var liveMembers = 0
    /// Members with status dead (see ``store(_:for:)``): push-pull looks for one only when there is.
    private(set) var deadMembers = 0
    /// The alive members and this peer on a hash ring, for choosing responders and witnesses,
    /// and helpers and push-pull partners at random (``Ring/member(at:)``).
    private(set) var ring = Ring()
    /// New members admitted per second (Protocol.md §6.6).
    var admissions: TokenBucket
    /// Newcomers the rate refused, to be PINGed when it allows (WaitingRoom.swift).
    var waiting = WaitingRoom()
    /// Waiting newcomers PINGed, until one period after the PING: the first datagram from one
    /// admits it without another token (`paid`), and gets the view this peer owes it when it
    /// is one of its responders and refused its ANNOUNCE (`owesView`, §6.1.2).
    var asked: [NodeID: Asked] = [:]
    struct Asked: Sendable {
        var expires: UInt64
        var paid = true
        var owed: WaitingRoom.OwedAnswer?
    }
    var nextAskAt: UInt64 = 0
    /// Newcomers this peer answered as a responder, to be sent the members it admits after
    /// its answer (Membership+Waiting.swift), in the order they are due.
    var viewUpdates: [ViewUpdate] = []
    /// Ids replaced by a restart under the same name, with the time of replacement (kept one
    /// reap time, to refuse second-hand gossip that would bring them back).
    var replaced: [NodeID: UInt64] = [:]
    var reaped: [NodeID: UInt64] = [:]
    var probing: Probing
    /// Ids removed from the view while still in the probe order (they leave it when their turn
    /// comes); a member in the view carries that mark in its row (``Member/probeListed``).
    var probeListedGone: Set<NodeID> = []
    /// Round trips and probe loss per member (PathEstimates.swift).
    var paths: [NodeID: PathEstimate] = [:]
    /// ``paths`` summed up at the last housekeeping (nil before any member answered).
    var pathSummary: PathSummary?
    /// The recent share of probes without a direct ACK (``PathSummary``'s loss follows it up).
    var recentLoss = RecentLoss()
    /// Whether a direct ACK answered the last probe sent yet; nil before the first probe.
    var lastProbeAnswered: Bool?
    /// Suspicion timeouts and reaping, per member.
    var deadlines = Deadlines<MemberTimer>()
    /// The suspicion of each suspect member (only while it is suspect).
    var suspicions: [NodeID: Held] = [:]
    var dissemination = Dissemination()
    /// Newcomers held back from the published view (Membership+Publication.swift).
    var publication = Publication()
    /// The tags of the members that have any (Membership+Tags.swift): one per member of the view.
    var tagRecords: [NodeID: TagRecord] = [:]
    /// PINGs this peer sends for others (helper of a PING_REQ) or as a witness, by probe id.
    var relays: [UInt32: Relay] = [:]
    var nextRelayID: UInt32 = 0
    /// The earliest NACK, witness verdict or expiry among `relays`.
    var nextRelayAt: UInt64 = .max
    var rng: SplitMix64
    /// Changes made by the call in progress, returned by it.
    var changes: [MembershipChange] = []

    var nextPushPullAt: UInt64 = 0
    /// When to multicast this peer's refutation a second time (nil: none pending).
    var refuteAgainAt: UInt64?
    /// Quick copies of this peer's own entry still to multicast after a change of its tags.
    var ownEntryRepeats: QuickRepeats?
    /// Where the next push-pull slice starts in the probe order.
    var pushPullCursor = 0
    var nextHousekeepingAt: UInt64 = 0
    var announcesLeft = 0
    var nextAnnounceAt: UInt64 = 0
    /// Until when this peer is joining: the views that MEMBERS and HELLO_REPLY bring it are
    /// admitted whole, not at the admission rate (§6.6): a newcomer to 10,000 hears 9,999
    /// members at once, and those refused were left to anti-entropy, minutes at that size.
    var joiningUntil: UInt64 = 0
    /// Until when a newcomer first heard by its ANNOUNCE is greeted with a PING: it may have
    /// started after this peer's first ANNOUNCE, whose repeats end once answered (§6.1.2).
    var greetUntil: UInt64 = 0
    /// Greetings this peer may still send (``greetings`` from its start): a flood of forged
    /// ANNOUNCEs in its first 200 ms makes it PING no more addresses than that.
    var greetsLeft = 0

    enum MemberTimer: Hashable, Comparable, Sendable {
        /// A suspect's suspicion runs out: it is dead.
        case suspicion
        /// A dead or departed member leaves the view.
        case reap
    }

    /// A suspicion as this peer holds it.
    struct Held: Sendable {
        var suspicion: Suspicion
        /// The incarnation suspected.
        var incarnation: UInt32
        /// This peer accused first: it multicasts the verdict when the timeout runs out.
        var accused: Bool
        /// The probe id of this peer's one check of this suspicion (as a witness, or of a death
        /// heard), nil before it: the check's verdict counts for this suspicion only, not for a
        /// newer one of the same member started before that verdict was due. Also nil when the
        /// check could not start (relay table full, `relays_full`): a later CHANGE may start it,
        /// and meanwhile this peer's own failed probe may confirm, as any non-witness's does.
        var check: UInt32?
        /// This peer has checked the suspect (as a witness, or of a death heard).
        var witnessing: Bool { check != nil }
        /// The first peer heard accusing first-hand (nil while only hearsay is known).
        var accuser: NodeID?
        /// The suspicion ran out and the suspect got its last chance (§6.1.6).
        var lastChance = false
        /// Started by a CHANGE(dead) heard first-hand about a member held alive: the group
        /// heard the same death, and every peer that held the member alive checks it itself,
        /// so a failed check confirms here only (§6.1.3).
        var deathHeard = false
    }

    /// A PING this peer sends on behalf of another (`requester` set) or as a witness.
    struct Relay: Sendable {
        var requester: Endpoint?
        var probeID: UInt32
        var target: NodeID
        /// A helper's NACK, or a witness's verdict, is due then (nil once done).
        var verdictAt: UInt64?
        var expires: UInt64
        /// The PING of a suspicion that ran out, its last chance (no ACK, direct or relayed by
        /// a helper, by the verdict: dead).
        var lastChance = false
        /// When the PING goes again if no ACK came (a last chance's second PING), nil once sent.
        var retryAt: UInt64?

        /// The first of its times still to come: the relay table's next wake-up.
        var nextDue: UInt64 { min(verdictAt ?? expires, retryAt ?? expires, expires) }
    }

    init(config: PeerConfig, rng: SplitMix64) {
        self.config = config
        self.rng = rng
        admissions = TokenBucket(capacity: config.admission.burst, perSecond: config.admission.perSecond, now: 0)
        probing = Probing(settings: Probing.Settings(period: config.protocolPeriod, pingTimeout: config.pingTimeout,
            helpers: config.indirectProbes), start: 0)
        ring.insert(config.id)
        let expected = config.expectedViewSize
        if expected > 0 {
            members.reserveCapacity(expected)
            probing.reserveCapacity(expected)
        }
    }

    /// Members alive or suspect, this peer included. Kept as a counter: recounting the view on
    /// every input made a 1,000-node simulation cubic.
    var liveCount: Int { liveMembers + 1 }

    /// Members with status alive, this peer not counted (the ring holds them and this peer).
    var aliveCount: Int { max(0, ring.count - 1) }

    var view: MemberView {
        MemberView(members: members, me: config.id, liveCount: liveCount, aliveCount: aliveCount, multicast: config.multicast, seeds: config.seeds, ring: ring, paths: pathSummary)
    }

    // Inlined into Peer.readNextDeadline(), which then reads it in place, not from a copy.
    @inline(__always) var nextDeadline: UInt64 {
        var deadline = min(probing.nextDeadline, nextPushPullAt, nextHousekeepingAt, nextRelayAt)
        if let at = deadlines.next { deadline = min(deadline, at) }
        if announcesLeft > 0 { deadline = min(deadline, nextAnnounceAt) }
        if let at = refuteAgainAt { deadline = min(deadline, at) }
        if let repeats = ownEntryRepeats { deadline = min(deadline, repeats.next) }
        if !waiting.isEmpty || !asked.isEmpty { deadline = min(deadline, nextAskAt) }
        if let update = viewUpdates.first { deadline = min(deadline, update.due) }
        if let due = publicationDue { deadline = min(deadline, due) }
        return deadline
    }

    /// Announces (repeated with jitter) and sets the timers.
    /// `hello`: the request id of the HELLO the first ANNOUNCE carries (§6.3.1).
    mutating func start(now: Now, digest: SetDigest, hello: UInt32? = nil, out: inout Outbox) {
        announcesLeft = config.announceCount
        nextAnnounceAt = now.nanos
        joiningUntil = .max
        greetUntil = now.nanos.saturatingAdd(Self.greetWindow)
        greetsLeft = Self.greetings
        startProbing(now: now, probeFrom: now.nanos, firstPushPullAt: now.nanos.saturatingAdd(pushPullInterval))
        sendAnnounce(now: now, digest: digest, hello: hello, out: &out)
    }

    /// The probing and anti-entropy timers of a start (cold or warm): the first probe one
    /// period after `probeFrom`, an empty round robin (reserved for the expected view again:
    /// a new ``Probing`` drops what `init` reserved), housekeeping a second from `now`.
    mutating func startProbing(now: Now, probeFrom: UInt64, firstPushPullAt: UInt64) {
        probing = Probing(settings: probing.settings, start: probeFrom)
        probing.reserveCapacity(config.expectedViewSize)
        members.modifyEach { $0.probeListed = false }
        probeListedGone = []
        nextPushPullAt = firstPushPullAt
        nextHousekeepingAt = now.nanos.saturatingAdd(.millis(1_000))
    }

    /// Anti-entropy grows with log10 of the view (Protocol.md §6.1), so its cost per peer stays flat.
    var pushPullInterval: UInt64 {
        UInt64(clampingNanos: Double(config.pushPullInterval) * Logarithm.nodeScale(liveCount))
    }

    /// Adds, replaces or removes a member, keeping the live and dead counters, the ring and the
    /// probe order exact.
    mutating func store(_ member: Member?, for id: NodeID) {
        let old = members[id]
        // In the probe order already (a member removed and back before its turn is still in).
        let listed = old?.probeListed ?? (!probeListedGone.isEmpty && probeListedGone.contains(id))
        if let old {
            if old.isPublished { publication.publishedRows -= 1 }
            if old.isLive { liveMembers -= 1 }
            if old.status == .dead { deadMembers -= 1 }
            // An alive member that stays alive (a refutation, a new address) keeps its place.
            if old.status == .alive, member?.status != .alive { ring.remove(id) }
        }
        if var member {
            member.probeListed = listed
            member.isPublished = old?.isPublished ?? false
            if member.isPublished { publication.publishedRows += 1 }
            if member.status == .dead { deadMembers += 1 }
            if member.isLive {
                liveMembers += 1
                if !listed {
                    probing.add(id, rng: &rng)
                    member.probeListed = true
                }
            }
            if listed, old == nil { probeListedGone.remove(id) }
            if member.status == .alive, old?.status != .alive { ring.insert(id) }
            members[id] = member
        } else {
            if listed, old != nil { probeListedGone.insert(id) }
            dissemination.remove(id)
            deadlines.cancel(id, .suspicion)
            deadlines.cancel(id, .reap)
            suspicions[id] = nil
            tagRecords[id] = nil
            paths[id] = nil
            members[id] = nil
        }
    }

    /// Whether one more member may enter the view now (Protocol.md §6.6): the view has room
    /// (a dead or departed member makes room if needed) and the admission rate allows it
    /// (`rated`: a joining peer takes the views it is sent whole, within the view's bound).
    /// A newcomer `id` (reachable at `endpoint`) refused by the rate waits to be PINGed when
    /// the rate allows (Membership+Waiting.swift), ready at once when `vouched` (a member's
    /// unicast entry named it) or when this peer is one of its responders; one so PINGed
    /// already paid its token.
    mutating func admitNewMember(_ id: NodeID? = nil, at endpoint: Endpoint? = nil, vouched: Bool = false, now: Now, rated: Bool = true, out: inout Outbox) -> Bool {
        var rated = rated
        if let id, asked[id]?.paid == true {
            asked[id]?.paid = false
            rated = false
        }
        if members.count >= config.limits.members {
            let gone = members.values.filter { !$0.isLive }.min { ($0.statusSince, $0.id) < ($1.statusSince, $1.id) }
            guard let gone else {
                out.drop("members_full")
                return false
            }
            store(nil, for: gone.id)
            // Forgotten early, as reaping would later: said so, or a later entry about it
            // would bring a second `joined` with nothing in between.
            if gone.isPublished { out.emit(.reaped(name: gone.name, id: gone.id)) }
        }
        if rated {
            guard admissions.hasTokens(now: now.nanos) else {
                out.drop("admission_limited")
                if let id, let endpoint { wait(id, at: endpoint, vouched: vouched, now: now, out: &out) }
                return false
            }
            admissions.take(1, now: now.nanos)
        }
        if let id, let guest = waiting.guests[id] { waiting.admitted(id, owesView: guest.owed != nil) }
        return true
    }

    /// A peer whose own loop was late moves its own verdicts forward by the gap: the silence
    /// of others while it was away is its fault, not theirs.
    mutating func shift(by gap: UInt64) {
        probing.shift(by: gap)
        deadlines.shift(by: gap)
        for id in Array(suspicions.keys) { suspicions[id]?.suspicion.shift(by: gap) }
        for (id, var relay) in relays {
            relay.verdictAt = relay.verdictAt.map { $0.saturatingAdd(gap) }
            relay.retryAt = relay.retryAt.map { $0.saturatingAdd(gap) }
            relay.expires = relay.expires.saturatingAdd(gap)
            relays[id] = relay
        }
        nextRelayAt = nextRelayAt.saturatingAdd(gap)
    }

    // MARK: Sending

    /// This peer's own entry, alive at its incarnation.
    func ownEntry(incarnation: UInt32) -> MemberEntry {
        MemberEntry(id: config.id, incarnation: incarnation, status: .alive,
            endpoint: Endpoint(ip: config.advertisedAddress.unspecified, port: config.replyPort), name: config.name)
    }

    /// The answer this peer owes a newcomer's ANNOUNCE now: nil when it is none of its
    /// responders (§6.1.2), else its share of the view (nil share: the whole view).
    func owedAnswer(to newcomer: NodeID) -> WaitingRoom.OwedAnswer? {
        guard config.multicast else { return WaitingRoom.OwedAnswer(share: nil) }
        guard ring.isSuccessor(config.id, of: newcomer, count: config.witnesses) else { return nil }
        let chosen = ring.successors(of: newcomer, count: config.witnesses)
        return WaitingRoom.OwedAnswer(share: chosen.firstIndex(of: config.id).map { ($0, chosen.count) })
    }

    /// Whether this peer answers a newcomer's ANNOUNCE or HELLO: one of the `witnesses` members
    /// that follow it on the ring, or anyone when multicast is off (the newcomer's datagram
    /// came to a seed, and nobody else may have heard it). Returns how many answers the
    /// newcomer should expect, or nil when this peer stays silent.
    func responders(for newcomer: NodeID) -> Int? {
        guard config.multicast else { return max(1, ring.count - (members[newcomer]?.status == .alive ? 1 : 0)) }
        return owedAnswer(to: newcomer)?.share?.of
    }

    /// Queues a member's current state to ride on the next PINGs and ACKs.
    mutating func disseminate(_ id: NodeID, out: inout Outbox) {
        if dissemination.enqueue(id, members: liveCount, limit: config.limits.piggybackQueue) { out.drop("piggyback_full") }
    }

    /// Up to `piggybackPerPing` queued changes that fit one datagram, `first` (the target of
    /// a PING, when this peer does not hold it alive: Lifeguard's buddy system) ahead of the queue.
    /// Tags are listed for them afterwards, in the room they leave (``listedTags(onPiggyback:overhead:)``).
    mutating func piggyback(first: NodeID?, incarnation: UInt32, overhead: Int) -> [MemberEntry] {
        var entries: [MemberEntry] = []
        var room = Limits.maxDatagram - overhead - Ping.fixedSize
        func add(_ entry: MemberEntry) {
            guard entry.encodedSize <= room, !entries.contains(where: { $0.id == entry.id }) else { return }
            room -= entry.encodedSize
            entries.append(entry)
        }
        if let first, let member = members[first], member.status != .alive { add(member.entry()) }
        for id in dissemination.take(config.piggybackPerPing - entries.count) {
            if id == config.id {
                add(ownEntry(incarnation: incarnation))
            } else if let member = members[id] {
                add(member.entry())
            }
        }
        return entries
    }

    /// Multicasts this peer's own verdicts (or its refutation) once.
    func sendChange(_ entries: [MemberEntry], out: inout Outbox) {
        guard !entries.isEmpty else { return }
        out.send(.change(entries), to: view.groupDestinations())
    }

    mutating func sendAnnounce(now: Now, digest: SetDigest, hello: UInt32? = nil, out: inout Outbox) {
        let announcement = Announcement(memberCount: UInt16(clamping: liveCount), revoked: digest)
        out.send(.announce(announcement), to: view.searchDestinations(), extensions: hello.map { [Message.carrying(hello: $0)] } ?? [])
        announcesLeft -= 1
        // Repeats spread over ~100 ms with jitter so two peers started together still meet.
        let spread = UInt64.millis(30) * UInt64(max(0, config.announceCount - announcesLeft))
        nextAnnounceAt = now.nanos + spread + rng.next() % .millis(20)
        if announcesLeft <= 0 { joiningUntil = now.nanos.saturatingAdd(Self.joinWindow) }
    }

    /// The first answer to this peer's ANNOUNCE (a MEMBERS page or a HELLO_REPLY) ends its
    /// repeats: the group heard it, and members that missed it hear of this peer by gossip
    /// (§6.1.2). In a cold start of 1,000 the repeats were two thirds of all deliveries.
    mutating func endAnnounceRepeats(now: Now) {
        guard announcesLeft > 0 else { return }
        announcesLeft = 0
        joiningUntil = now.nanos.saturatingAdd(Self.joinWindow)
    }

    /// How long after its last ANNOUNCE a peer takes the views it is sent whole (§6.6).
    static let joinWindow: UInt64 = .millis(2_000)
    /// How long after its start a peer greets the newcomers it hears announce (§6.1.2): the
    /// ~100 ms its repeats spanned, and the delay of their copies.
    static let greetWindow: UInt64 = .millis(200)
    /// At most this many greetings per start (§6.6): 10,000 peers started over 10 s start 200
    /// in any 200 ms.
    static let greetings = 256
    /// For this many protocol periods after a member came back from a suspicion, this peer
    /// accuses it by gossip, not multicast (a quiet suspicion, §6.1.5).
    static let quietPeriods: UInt64 = 20

    /// Whether this peer is still joining (see ``joiningUntil``).
    func isJoining(now: Now) -> Bool { now.nanos < joiningUntil }

    /// Says goodbye three times so that a single lost datagram does not turn a clean stop into
    /// a death.
    func sendGoodbye(out: inout Outbox) {
        for _ in 0..<3 { out.send(.goodbye, to: view.groupDestinations()) }
    }

    /// Takes the changes the call in progress made.
    mutating func takeChanges() -> [MembershipChange] {
        guard !changes.isEmpty else { return [] }
        defer { changes = [] }
        return changes
    }
}

extension MemberStatus {
    var isLiveStatus: Bool { self == .alive || self == .suspect }
}
