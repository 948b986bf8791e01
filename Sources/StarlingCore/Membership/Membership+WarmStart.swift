/// Membership: a warm start (the simulator's, issue 16). A peer starts as if it had joined
/// long ago and its view had converged: every member given is alive and published, in the
/// ring and the probe order, and nothing is announced, greeted or gossiped. A cold start of
/// 10,000 simulated peers is 61 million deliveries and half an hour of wall time before the
/// first steady-state figure; a warm start is one table fill per peer.
extension Membership {
    /// Starts this peer's timers (as ``start(now:digest:hello:out:)`` does, without its
    /// ANNOUNCEs) and takes `view` whole: each entry live and not this peer is stored alive at
    /// its incarnation, heard `now`, already published (no `joined`). Entries of the wrong
    /// family, repeated ids and entries beyond the view's bound are skipped. Returns how many
    /// members were stored.
    @discardableResult
    mutating func startWarm(view: [MemberEntry], now: Now) -> Int {
        announcesLeft = 0
        joiningUntil = 0
        greetUntil = 0
        greetsLeft = 0
        // The first probe and push-pull at random points of their periods: peers warm-started
        // at one instant would otherwise probe and push-pull in step.
        let probeFrom = now.nanos.saturatingAdd(rng.next() % max(1, probing.settings.period))
        startProbing(now: now, probeFrom: probeFrom, firstPushPullAt: now.nanos.saturatingAdd(rng.next() % max(1, pushPullInterval)))
        probing.reserveCapacity(min(view.count, config.limits.members))
        var stored = 0
        for entry in view where entry.status.isLiveStatus && entry.id != config.id {
            guard members.count < config.limits.members, members[entry.id] == nil,
                  let endpoint = entry.endpoint(source: config.advertisedAddress) else { continue }
            store(Member(id: entry.id, name: entry.name, endpoint: endpoint, incarnation: entry.incarnation,
                status: .alive, lastHeard: now.nanos, statusSince: now.nanos), for: entry.id)
            markPublished(entry.id)
            stored += 1
        }
        return stored
    }
}
