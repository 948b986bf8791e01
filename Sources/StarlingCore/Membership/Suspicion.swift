/// Lifeguard's suspicion (Protocol.md §6.1, version 2): a suspected member is declared dead
/// when its timeout runs out, and the timeout shrinks as independent members confirm the
/// suspicion — from `maximum` with no confirmation down to `minimum` with `wanted` of them,
/// logarithmically (the first confirmations count most). A lone suspector, perhaps the one with
/// the bad link, waits longest; the suspect has all that time to hear of it and refute.
struct Suspicion: Sendable, Equatable {
    private(set) var startedAt: UInt64
    let minimum: UInt64
    let maximum: UInt64
    /// Confirmations that bring the timeout down to `minimum` (Lifeguard's K).
    let wanted: Int
    /// Distinct members that confirmed, the first suspector not included; at most `wanted`
    /// are kept (more cannot shorten the timeout further), so a flood of forged confirmations
    /// costs nothing.
    private(set) var confirmers: [NodeID] = []
    let suspector: NodeID

    /// The bounds for a view of `members` (this peer included) and a protocol period:
    /// minimum = α · max(1, log10 n) · period, maximum = β · minimum.
    static func bounds(members: Int, period: UInt64, alpha: Double, beta: Double) -> (minimum: UInt64, maximum: UInt64) {
        let minimum = UInt64(clampingNanos: alpha * Logarithm.nodeScale(members) * Double(period))
        let maximum = UInt64(clampingNanos: beta * Double(minimum))
        return (minimum, max(minimum, maximum))
    }

    init(by suspector: NodeID, now: UInt64, minimum: UInt64, maximum: UInt64, wanted: Int) {
        self.suspector = suspector
        startedAt = now
        self.minimum = min(minimum, maximum)
        self.maximum = maximum
        self.wanted = max(0, wanted)
    }

    /// Fewer than `wanted` members confirmed it: more would still shorten the timeout.
    var isShortOfConfirmations: Bool { confirmers.count < wanted }

    /// Records a confirmation; true when it came from a member not counted yet (and so may
    /// bring the deadline closer).
    mutating func confirm(by member: NodeID) -> Bool {
        guard isShortOfConfirmations, member != suspector, !confirmers.contains(member) else { return false }
        confirmers.append(member)
        return true
    }

    /// max(minimum, maximum − (maximum − minimum) · ln(c + 1) / ln(K + 1)).
    var timeout: UInt64 {
        guard wanted > 0 else { return minimum }
        let fraction = Logarithm.natural(Double(confirmers.count + 1)) / Logarithm.natural(Double(wanted + 1))
        let shrink = UInt64(clampingNanos: Double(maximum - minimum) * min(1, max(0, fraction)))
        return max(minimum, maximum - min(shrink, maximum - minimum))
    }

    var deadline: UInt64 {
        let (sum, overflow) = startedAt.addingReportingOverflow(timeout)
        return overflow ? .max : sum
    }

    func hasExpired(now: UInt64) -> Bool { now >= deadline }

    /// This peer's own loop stalled: the time it was away does not count.
    mutating func shift(by gap: UInt64) { startedAt = startedAt &+ gap }
}
