extension Peer {
    /// Starts the peer as if it had joined long ago and the cluster had converged (the
    /// simulator's warm start, issue 16): `view` is taken whole — every live entry other than
    /// this peer alive and already published — the mingle counts as done with the revoked set
    /// given at init, and nothing is sent or emitted. Probing and anti-entropy begin from `now`.
    /// A real agent always starts with ``start(now:)``: a warm start skips the join that tells
    /// the others this peer exists.
    package mutating func startWarm(view: [MemberEntry], now: Now) -> [Action] {
        started = now
        lastActivity = now.nanos
        sync.startSettled(now: now)
        membership.startWarm(view: view, now: now)
        return outbox.take()
    }
}
