/// What this peer measured of the path to each member it probes (issue 21, Protocol.md §6.1.5):
/// the round trip of its direct PINGs (SRTT and RTTVAR as TCP keeps them, RFC 6298) and how
/// many of them went unanswered. Kept for members of the view only (pruned once a second), so
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
        paths[target, default: PathEstimate()].probes &+= paths[target]?.probes == .max ? 0 : 1
    }

    /// A direct ACK that answered the probe in flight, sent at `sentAt`.
    mutating func noteDirectAck(from target: NodeID, sentAt: UInt64, now: UInt64) {
        guard var path = paths[target] else { return }
        path.roundTrip.add(now &- min(now, sentAt))
        if path.answered < path.probes { path.answered += 1 }
        paths[target] = path
    }

    /// Forgets the estimates of members no longer in the view.
    mutating func prunePaths() {
        guard paths.count > members.count || paths.keys.contains(where: { members[$0] == nil }) else { return }
        paths = paths.filter { members[$0.key] != nil }
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
