/// SWIM's failure detector with Lifeguard's refinements (Protocol.md §6.1.5, §6.1.7): every
/// period this peer pings the next member of its shuffled round robin; without an ACK by the
/// ping timeout it asks `helpers` others to ping the target for it; without an ACK (direct or
/// relayed) by the end of the period the target is suspect. Helpers that got no answer either
/// send a NACK, so a peer whose own receive path is failing notices that it hears neither and
/// slows down (``LocalHealth``) instead of accusing healthy members.
///
/// It owns only the probe in flight, the order and the health score; what a member is and how
/// to reach it come in as closures, and what to send comes out as ``Probing/Step`` values.
struct Probing: Sendable {
    struct Settings: Sendable {
        var period: UInt64
        var pingTimeout: UInt64
        var helpers: Int
    }

    /// The probe of the current period.
    struct InFlight: Sendable, Equatable {
        let probeID: UInt32
        let target: NodeID
        let sentAt: UInt64
        /// When to ask helpers (the ping timeout, scaled by local health).
        var indirectAt: UInt64
        /// When an unanswered target becomes suspect (the period, scaled by local health).
        var verdictAt: UInt64
        var helpersAsked = 0
        var nacks = 0
    }

    enum Step: Sendable, Equatable {
        case ping(probeID: UInt32, target: NodeID, to: Endpoint)
        case pingRequest(probeID: UInt32, target: NodeID, at: Endpoint, helpers: [Endpoint])
        /// The target did not answer this period: suspect it (the caller decides what that means
        /// for a member that changed meanwhile).
        case suspect(NodeID)
    }

    let settings: Settings
    private(set) var order = ProbeOrder()
    private(set) var health = LocalHealth()
    private(set) var inFlight: InFlight?
    private(set) var nextPeriodAt: UInt64
    private var nextProbeID: UInt32 = 1

    init(settings: Settings, start: UInt64) {
        self.settings = settings
        nextPeriodAt = start &+ settings.period
    }

    // Inlined into Peer.readNextDeadline(), which then reads it in place, not from a copy.
    @inline(__always) var nextDeadline: UInt64 {
        guard let probe = inFlight else { return nextPeriodAt }
        return probe.helpersAsked == 0 && probe.indirectAt < probe.verdictAt ? probe.indirectAt : probe.verdictAt
    }

    /// This peer's own probe ids stay in 1 ... 2^31 − 1; ids of the upper half are left to the
    /// pings a peer sends for others (relays, witnesses), so that an ACK is never taken for the
    /// wrong one.
    static let maxProbeID: UInt32 = 0x7FFF_FFFF

    /// This peer's own loop stalled for `gap`: its silence says nothing about the target, so
    /// the probe's deadlines and the next period move forward by the gap.
    mutating func shift(by gap: UInt64) {
        nextPeriodAt = nextPeriodAt &+ gap
        guard var probe = inFlight else { return }
        probe.indirectAt = probe.indirectAt &+ gap
        probe.verdictAt = probe.verdictAt &+ gap
        inFlight = probe
    }

    /// A member to probe from now on (joined, or alive again); the caller knows it is not in yet.
    mutating func add(_ id: NodeID, rng: inout SplitMix64) { order.insert(id, rng: &rng) }
    mutating func reserveCapacity(_ count: Int) { order.reserveCapacity(count) }

    /// The members that left the rotation since the last call (gone, dead or left when their turn came).
    mutating func takeDropped() -> [NodeID] { order.takeDropped() }

    /// Whether a probe was answered after a bad spell of local health since the last call.
    mutating func takeRecovery() -> Bool { health.takeRecovery() }

    /// This peer had to refute a suspicion of itself: it was slow to answer (Lifeguard).
    mutating func noteRefuted() { health.note(.refuted) }

    /// Runs what is due at `now`. `endpoint` gives a member's address while it may be probed
    /// (alive or suspect), nil otherwise; `helpers` picks up to n members to relay, the target
    /// excluded.
    mutating func tick(now: UInt64, rng: inout SplitMix64, endpoint: (NodeID) -> Endpoint?,
                       helpers: (Int, NodeID) -> [Endpoint]) -> [Step] {
        var steps: [Step] = []
        if var probe = inFlight {
            if probe.helpersAsked == 0, now >= probe.indirectAt, now < probe.verdictAt {
                // Helpers are asked once: with none to ask (or the target gone) the probe waits
                // for its verdict instead of asking for a tick at every input until then.
                probe.indirectAt = probe.verdictAt
                if let at = endpoint(probe.target) {
                    let picked = helpers(settings.helpers, probe.target)
                    if !picked.isEmpty {
                        probe.helpersAsked = picked.count
                        steps.append(.pingRequest(probeID: probe.probeID, target: probe.target, at: at, helpers: picked))
                    }
                }
                inFlight = probe
            }
            if now >= probe.verdictAt {
                // Nobody answered: each helper that did not even send a NACK counts against this
                // peer's own health; so does a probe with no helper to ask.
                if probe.helpersAsked == 0 {
                    health.note(.probeUnanswered)
                } else {
                    for _ in probe.nacks..<max(probe.nacks, probe.helpersAsked) { health.note(.nackMissed) }
                }
                inFlight = nil
                if endpoint(probe.target) != nil { steps.append(.suspect(probe.target)) }
            }
        }
        if inFlight == nil, now >= nextPeriodAt {
            nextPeriodAt = now &+ health.scaled(settings.period)
            if let target = order.next(rng: &rng, keep: { endpoint($0) != nil }), let at = endpoint(target) {
                let probeID = nextProbeID
                nextProbeID = nextProbeID >= Self.maxProbeID ? 1 : nextProbeID + 1
                inFlight = InFlight(probeID: probeID, target: target, sentAt: now,
                    indirectAt: now &+ health.scaled(settings.pingTimeout), verdictAt: nextPeriodAt)
                steps.append(.ping(probeID: probeID, target: target, to: at))
            }
        }
        return steps
    }

    /// An ACK, direct or relayed: true when it answers the probe in flight (its target is then
    /// alive, and this period is done).
    mutating func onAck(probeID: UInt32, target: NodeID) -> Bool {
        guard let probe = inFlight, probe.probeID == probeID, probe.target == target else { return false }
        health.note(.probeAnswered)
        inFlight = nil
        return true
    }

    /// A helper's NACK: it could not reach the target either, but this peer hears its helpers.
    mutating func onNack(probeID: UInt32, target: NodeID) {
        guard var probe = inFlight, probe.probeID == probeID, probe.target == target, probe.nacks < probe.helpersAsked else { return }
        probe.nacks += 1
        inFlight = probe
    }
}
