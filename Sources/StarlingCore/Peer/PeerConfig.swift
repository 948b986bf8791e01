/// Settings of one peer. Durations are nanoseconds of the injected monotonic clock.
/// Defaults are the ones Protocol.md §6 lists.
public struct PeerConfig: Sendable {
    public var cluster = "starling"
    public var name: String
    public var id: NodeID
    /// Port of this peer's unicast socket, written into every header.
    public var replyPort: UInt16 = 0
    /// This peer's own address where the shell knows it (for listings, and the family of its own
    /// entry: one cluster is one family, Protocol.md §2.5); IPv4 0.0.0.0 if unknown.
    public var advertisedAddress = IPAddress(ipv4: 0)
    /// What this peer says about itself (Protocol.md §3.4.1); changed at run time by
    /// ``Peer/setTags(_:now:)``.
    public var tags = MemberTags.empty
    /// SWIM's protocol period T: one member probed per period (Protocol.md §6.1).
    public var protocolPeriod: UInt64 = .millis(150)
    /// No ACK by then (× local health): ask helpers to probe the target.
    public var pingTimeout: UInt64 = .millis(40)
    /// Helpers asked to probe a member that did not answer (k).
    public var indirectProbes = 3
    /// Members that check a fresh suspicion at once and confirm it when they cannot reach the
    /// suspect (w), and members that answer a newcomer's ANNOUNCE (r).
    public var witnesses = 3
    /// Lifeguard's suspicion bounds: minimum = α · max(1, log10 n) · T, maximum = β · minimum.
    public var suspicionAlpha = 1.5
    public var suspicionBeta = 6.0
    /// Independent confirmations that bring a suspicion down to its minimum (K).
    public var confirmationsWanted = 3
    public var reapAfter: UInt64 = .millis(60_000)
    public var announceCount = 3
    public var pushPullInterval: UInt64 = .millis(5_000)
    public var aloneAfter: UInt64 = .millis(250)
    public var mingleDeadline: UInt64 = .millis(3_000)
    public var pageTimeout: UInt64 = .millis(40)
    public var pageBurst: UInt8 = 32
    public var revokedMaxCount = 50_000
    public var revokedMaxAgeMillis: UInt64 = 3 * 3_600_000
    /// Outer bound of an election: the wait for a candidacy when none is held, and for votes.
    public var electionTimeout: UInt64 = .millis(500)
    /// The decision window before any member answered a direct PING (Protocol.md §6.4); after,
    /// it is twice the measured paths' timeout, within 2–250 ms: concurrent candidacies are all
    /// sent before their senders heard the first, so they arrive within about one round trip.
    public var decisionWindow: UInt64 = .millis(10)
    /// Members on the hash ring that start the next term at once after a leader loss; the
    /// others stagger their starts behind them (Protocol.md §6.4).
    public var electors = 3
    public var leaderAnnounceInterval: UInt64 = .millis(2_000)
    /// Start a new election for a topic when its leader dies or leaves.
    public var autoReelect = true
    /// Majority mode: the expected cluster size; nil means every partition elects its own leader.
    public var quorum: Int?
    public var keys: [AuthKey] = []
    /// Unicast addresses to announce to, for networks without multicast.
    public var seeds: [Endpoint] = []
    /// Send to the multicast group; when false, what would go to the group goes by unicast to
    /// every known member.
    public var multicast = true
    /// Newcomers are published together (Protocol.md §6.1.8): once no newcomer came for this
    /// long (two periods), the ones held back enter the published view (``Peer/publishedMembers``,
    /// `joined` events) at once. 0 publishes each newcomer as it comes.
    public var settleInterval: UInt64 = .millis(300)
    /// ...and at the latest this long after the first one held back, so that a steady trickle
    /// of newcomers still shows (§6.1.8).
    public var publishWithin: UInt64 = .millis(10_000)
    /// Membership changes piggybacked on one PING or ACK at most.
    public var piggybackPerPing = 8
    /// How many members the view is expected to hold (a hint, at most `limits.members`): the
    /// view's tables are reserved for that many at start instead of growing by copies. 0 (the
    /// default): they grow as members come. The simulator sets its node count.
    public var expectedMembers = 0
    /// ``expectedMembers`` as it counts: 0 or more, at most the view's bound.
    var expectedViewSize: Int { min(max(0, expectedMembers), max(0, limits.members)) }

    /// The admission bounds in force (Protocol.md §6.6): the configured ones, raised for a view
    /// expected to hold ``expectedMembers`` so that its cold start within a few seconds is
    /// admitted as it comes: burst expected / 2, then expected / 4 a second, waiting room
    /// expected / 2. A flood of forged ids can then fill the view that fast, up to
    /// `limits.members`, which the operator sized for by stating the size. (At 256 a second a
    /// cold start of 10,000 over 10 s, 1,000 newcomers a second, had not converged 60 s later.)
    var admission: (burst: UInt64, perSecond: UInt64, waiting: Int) {
        let expected = expectedViewSize
        return (max(limits.admissionBurst, UInt64(expected / 2)), max(limits.admissionsPerSecond, UInt64(expected / 4)),
                max(limits.admissionWaiting, expected / 2))
    }
    public var randomSeed: UInt64 = 1
    public var version = PeerConfig.softwareVersion
    /// Starling's own version, the one place it is written: `stats` and `--version` show it.
    public static let softwareVersion = "0.1.0"
    /// Test-only fault switches for the conformance suite's "can the case fail" check.
    public var faults: Set<Fault> = []
    /// Bounds on every table an outsider can grow and on what it can make this peer send.
    public var limits = Limits()

    /// Bounds of Protocol.md §6.6. Each is counted in `stats` drops when it is hit.
    public struct Limits: Sendable {
        /// Members in the view (any status); a new member beyond it is refused (`members_full`)
        /// once no dead or departed member can make room.
        public var members = 16_384
        /// New members admitted per second (burst, then rate), directly or by gossip
        /// (`admission_limited`): a churn of forged senders cannot stall the peer.
        /// (4,096 then 1,024 a second let the flood test's agents end above twice their memory.)
        public var admissionBurst: UInt64 = 1_024
        public var admissionsPerSecond: UInt64 = 256
        /// Newcomers refused by the rate kept to be PINGed once it allows, one token each
        /// (`admission_waiting_full`: past it the oldest is forgotten).
        public var admissionWaiting = 4_096
        /// Election topics held (`topics_full`).
        public var topics = 256
        /// Indirect probes relayed for others at once (`relays_full`).
        public var relays = 256
        /// Changes queued to piggyback on PING and ACK (`piggyback_full`): past it the change
        /// with fewest sends left is dropped (it went out by multicast; push-pull repairs).
        public var piggybackQueue = 1_024
        /// Senders with a replay window (with a key); the least recently heard is forgotten.
        public var replayWindows = 4_096
        /// Bytes sent in answer to requests, per destination (burst, then per second); the
        /// whole peer may send four times the burst and eight times the rate (`rate_limited`).
        public var answerBytesBurst: UInt64 = 4 << 20
        public var answerBytesPerSecond: UInt64 = 1 << 20
        /// Destinations whose answer budget is tracked.
        public var answerDestinations = 1_024
        /// Pages served for one PAGE_REQUEST, whatever `max_pages` asks.
        public var pagesPerRequest: UInt8 = 32
        /// Bytes one input (a datagram, a timer pass, an API call) may queue to send
        /// (`send_budget`): without multicast a broadcast goes to every member, and a view of
        /// forged members must not turn one input into hundreds of megabytes.
        public var sendBytesPerInput = 4 << 20

        public init() {}
    }

    /// Deliberate protocol violations, used only to prove that conformance cases can fail.
    public enum Fault: String, Sendable, CaseIterable {
        /// Do not adjust the Lamport clock on receive.
        case noClockAdjust = "no-clock-adjust"
        /// Do not answer PINGs.
        case ignoreProbes = "ignore-probes"
        /// Vote for the highest stamp instead of the lowest.
        case electHighest = "elect-highest"
        /// Never check a suspect as one of its witnesses.
        case noWitness = "no-witness"
        /// Take any member's tags, whatever the incarnation they came at.
        case tagsAnyIncarnation = "tags-any-incarnation"
        /// Adopt a second-hand death over a suspicion held at the same incarnation (§6.1.3).
        case adoptHearsayDeath = "adopt-hearsay-death"
        /// Ignore hearsay that a member this peer holds dead is live at the same incarnation,
        /// instead of telling the member of the verdict (§6.1.3).
        case keepStaleVerdicts = "keep-stale-verdicts"
        /// Multicast every accusation, also of a member just back from a suspicion (no quiet
        /// accusations, §6.1.5).
        case loudAccusations = "loud-accusations"
        /// Multicast the confirmation of a failed check made because of a CHANGE(dead) heard
        /// first-hand, also by a peer that is no witness (§6.1.3; conformance case
        /// `6.1.3/failed-death-check-by-no-witness-is-quiet`).
        case loudDeathChecks = "loud-death-checks"
    }

    public init(name: String, id: NodeID) {
        self.name = name
        self.id = id
    }
}
