import StarlingCore

extension Simulator {
    /// Issue 16's false-death conditions at once: 1 % of the up nodes at 80 % loss on every
    /// link of theirs, and 10 % paused for 200 ms each at random moments, for `seconds`
    /// (virtual), then 5 s for the last verdicts. ``falseDeaths(window:)`` excuses verdicts by
    /// or about those nodes. Returns the nodes at 80 % loss.
    public func disturb(seconds: UInt64, seed: UInt64 = 16) -> [Int] {
        let up = nodes.indices.filter { nodes[$0].isUp }
        guard !up.isEmpty else { return [] }
        let lossy = stride(from: 0, to: up.count, by: 100).map { up[($0 + 37) % up.count] }
        for node in lossy { degrade(node, loss: 0.8) }
        var rng = SplitMix64(seed: seed)
        let paused = up.filter { _ in rng.next() % 10 == 0 }
        let span = seconds.saturatingMultiplied(by: 1_000_000_000)
        var pauses = paused.map { (at: rng.next() % max(1, span), node: $0) }
        pauses.sort { $0.at < $1.at }
        let start = now
        for pause in pauses {
            run(until: start + pause.at)
            self.pause(pause.node, for: 200_000_000)
        }
        run(until: start.saturatingAdd(span))
        for node in lossy { restore(node) }
        advance(5_000_000_000)
        return lossy
    }
}

extension Simulator {
    /// Crashes node `victim` (kill -9) and runs until every other up node holds it dead or
    /// gone, checking every `step`, for at most `limit` (virtual). Returns the virtual time
    /// from the crash to that moment, or nil if some node still held it live at `limit`.
    public func crashUntilFound(_ victim: Int, limit: UInt64, step: UInt64 = 10_000_000) -> UInt64? {
        let id = nodes[victim].peer.config.id
        crash(victim)
        let crashedAt = now
        let found = runUntil(limit: limit, step: step) {
            nodes.allSatisfy { !$0.isUp || $0.peer.members[id].map { !$0.isLive } ?? true }
        }
        return found.map { $0 - crashedAt }
    }
}
