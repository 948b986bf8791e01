/// Lifeguard's local health multiplier (Protocol.md §6.1, version 2). A peer that misses its
/// own deadlines — probes unanswered even by the helpers' nacks, suspicions of itself it had to
/// refute — is more likely slow itself than surrounded by failures, so it scales its probe
/// timeouts and its suspicion timeouts up by (score + 1) instead of accusing others faster.
struct LocalHealth: Sendable, Equatable {
    /// Lifeguard's cap: at most nine times slower verdicts.
    static let maximum = 8
    /// From this score up a peer is in a bad spell, until the score falls below it again; the
    /// spell's first answered probe is a recovery (``takeRecovery()``).
    static let badSpell = maximum / 2
    private(set) var score = 0
    /// The score is in a bad spell (risen to ``badSpell``, not fallen below it since).
    private var inBadSpell = false
    /// The spell's recovery is still to come: one per spell, so a score that hovers high
    /// (a link that stays bad, or refutations forced by forged suspicions) cannot make the
    /// peer push-pull at every answered probe.
    private var recoveryOwed = false
    /// A probe was answered after a bad spell began; not taken yet.
    private var recovered = false

    enum Event: Sendable {
        /// A probe answered in time: things look normal.
        case probeAnswered
        /// A probe with no ack and no nack from any helper: this peer's own receive path is suspect.
        case probeUnanswered
        /// A helper that should have sent a nack did not.
        case nackMissed
        /// Someone suspected this peer and it had to refute: it was slow to answer.
        case refuted
    }

    mutating func note(_ event: Event) {
        switch event {
        case .probeAnswered:
            if recoveryOwed { (recovered, recoveryOwed) = (true, false) }
            score = max(0, score - 1)
            if score < Self.badSpell { inBadSpell = false }
        case .probeUnanswered, .nackMissed, .refuted:
            score = min(Self.maximum, score + 1)
            if score >= Self.badSpell, !inBadSpell { (inBadSpell, recoveryOwed) = (true, true) }
        }
    }

    /// Whether a probe was answered after a bad spell since the last call: the peer's own
    /// links may have lost what the others said meanwhile, and they what it said (§6.1.4).
    mutating func takeRecovery() -> Bool {
        defer { recovered = false }
        return recovered
    }

    /// `duration` scaled by the multiplier, saturating.
    func scaled(_ duration: UInt64) -> UInt64 {
        let (product, overflow) = duration.multipliedReportingOverflow(by: UInt64(score + 1))
        return overflow ? .max : product
    }
}
