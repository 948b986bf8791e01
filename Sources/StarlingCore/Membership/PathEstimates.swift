/// What this peer measured of the path to each member it probes (issue 21, Protocol.md §6.1.5):
/// the round trip of its direct PINGs (SRTT and RTTVAR as TCP keeps them, RFC 6298) and how
/// many of them went unanswered. Kept for members of the view only (dropped with the row), so
/// bounded by the members table.
struct PathEstimate: Sendable, Equatable {
    var roundTrip = RoundTrip()
    /// Direct PINGs sent to the member as its prober, and those it answered directly.
    var probes: UInt32 = 0
    var answered: UInt32 = 0

    /// The share of direct PINGs unanswered (0 … 1), the one in flight not counted; nil before
    /// any has resolved.
    func loss(inFlight: Bool) -> Double? {
        let resolved = inFlight && probes > 0 ? probes - 1 : probes
        guard resolved > 0 else { return nil }
        return Double(resolved - min(answered, resolved)) / Double(resolved)
    }
}

extension Membership {
    mutating func notePing(to target: NodeID) {
        // A new probe means the last one is over: its outcome joins the recent loss. Every
        // probe counts, a member's first included: at 1,000 a round of the probe order takes
        // 150 s, so most probes are a member's first, and counting only members answered
        // before left the share stale (a change of tags at 10 % loss went out in 3 copies again).
        if let answered = lastProbeAnswered { recentLoss.add(unanswered: !answered) }
        lastProbeAnswered = false
        // Kept for members of the view only: ``store(_:for:)`` drops a member's with its row.
        guard members[target] != nil else { return }
        paths[target, default: PathEstimate()].probes &+= paths[target]?.probes == .max ? 0 : 1
    }

    /// A direct ACK that answered the probe in flight, sent at `sentAt`.
    mutating func noteDirectAck(from target: NodeID, sentAt: UInt64, now: UInt64) {
        if lastProbeAnswered != nil { lastProbeAnswered = true }
        guard var path = paths[target] else { return }
        path.roundTrip.add(now &- min(now, sentAt))
        if path.answered < path.probes { path.answered += 1 }
        paths[target] = path
    }

    /// Sums up the paths for the timers that follow them (once a second). A member's estimate
    /// leaves with its row (``store(_:for:)``): looking each one up in the view every second
    /// took 3 % of a 1,000-node simulation.
    mutating func summarizePaths() {
        pathSummary = PathSummary(paths.values, recent: recentLoss)
    }

    /// The estimate for `id`, as `members` and `stats` show it: SRTT and RTTVAR in
    /// milliseconds, and the loss of direct PINGs.
    func pathFields(_ id: NodeID) -> [(String, JSON)] {
        guard let path = paths[id] else { return [] }
        var fields: [(String, JSON)] = []
        if let srtt = path.roundTrip.smoothed {
            fields.append(("rtt_ms", .number(Self.millis(srtt))))
            fields.append(("rttvar_ms", .number(Self.millis(path.roundTrip.variation))))
        }
        if let loss = path.loss(inFlight: probing.inFlight?.target == id) {
            fields.append(("probe_loss", .number((loss * 1_000).rounded() / 1_000)))
        }
        return fields
    }

    /// The median SRTT over the members measured, in milliseconds, and how many were.
    func medianRoundTrip() -> (millis: Double, members: Int)? {
        let values = paths.values.compactMap(\.roundTrip.smoothed).sorted()
        guard !values.isEmpty else { return nil }
        return (Self.millis(values[values.count / 2]), values.count)
    }

    static func millis(_ nanos: UInt64) -> Double { (Double(nanos) / 1_000).rounded() / 1_000 }
}

/// The paths to the members measured, summed up for timers that concern them all (issue 21,
/// Protocol.md §6.4): the election's decision window and its quick LEADER repeats.
struct PathSummary: Sendable, Equatable {
    /// The 90th percentile, over the members measured, of SRTT + 4 RTTVAR (a round trip that
    /// few answers outlast), in nanoseconds.
    var timeout: UInt64
    /// One-way loss estimated from the direct PINGs (pooled, or recent when higher): a PING and
    /// its ACK both arrive with probability (1 − p)², so p = 1 − √(1 − unanswered share).
    var oneWayLoss: Double

    /// Nil until at least one member answered a direct PING. The unanswered share is the
    /// pooled one or, when higher, the `recent` one: pooled over a long quiet past, a loss that
    /// began seconds ago barely shows (at 1,000 simulated peers, 10 % loss 5 s old read as 1 %,
    /// and a change of tags went out in 3 copies, not 5).
    init?(_ paths: some Collection<PathEstimate>, recent: RecentLoss = RecentLoss()) {
        let timeouts = paths.compactMap { $0.roundTrip.smoothed == nil ? nil : $0.roundTrip.timeout(within: 0...UInt64.max) }.sorted()
        guard !timeouts.isEmpty else { return nil }
        timeout = timeouts[(timeouts.count - 1) * 9 / 10]
        var probes: UInt64 = 0
        var answered: UInt64 = 0
        for path in paths {
            probes += UInt64(path.probes)
            answered += UInt64(min(path.answered, path.probes))
        }
        let unanswered = max(probes == 0 ? 0 : Double(probes - answered) / Double(probes), recent.share)
        oneWayLoss = 1 - (1 - min(max(unanswered, 0), 1)).squareRoot()
    }

    /// Copies of a multicast that a member misses all of with probability at most 10⁻⁵ at the
    /// measured one-way loss p: the smallest n with pⁿ ≤ 10⁻⁵, within 1 … 64.
    var copiesForDelivery: Int {
        guard oneWayLoss > 0 else { return 1 }
        guard oneWayLoss < 0.9 else { return 64 }
        let needed = (Logarithm.natural(1e-5) / Logarithm.natural(oneWayLoss)).rounded(.up)
        // `needed` is finite and positive for a loss in (0, 0.9); clamped before converting.
        return Int(min(max(needed, 1), 64))
    }
}

/// The share of this peer's recent probes that got no direct ACK: each resolved probe's outcome
/// (1 unanswered, 0 answered) averaged in with weight 1/8, as TCP's SRTT follows round trips.
struct RecentLoss: Sendable, Equatable {
    private(set) var share: Double = 0

    mutating func add(unanswered: Bool) {
        share += ((unanswered ? 1 : 0) - share) / 8
    }
}
