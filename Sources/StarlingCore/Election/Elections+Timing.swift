/// How long an election's short timers are (Protocol.md §6.4, issue 21): they follow the round
/// trips and the loss this peer measured on its direct PINGs (§6.1.5), so that a fast LAN
/// decides in a few milliseconds and a slow or lossy one is given the time it needs.
extension Elections {
    /// The decision window stays within these bounds, whatever was measured.
    static let windowBounds: ClosedRange<UInt64> = .millis(2)...(.millis(250))

    /// The decision window: twice the 90th percentile of SRTT + 4 RTTVAR over the members
    /// measured (concurrent candidacies arrive within about two one-way latencies of each
    /// other, one round trip), within ``windowBounds``; the configured window before any
    /// member answered a PING.
    func decisionWindow(_ view: MemberView) -> UInt64 {
        guard let paths = view.paths else { return config.decisionWindow }
        let window = paths.timeout.saturatingMultiplied(by: 2)
        return min(max(window, Self.windowBounds.lowerBound), Self.windowBounds.upperBound)
    }

    /// How many times a new leader repeats its first LEADER within a few windows: enough that a
    /// member misses the CANDIDACY, the LEADER and every repeat with probability at most 10⁻⁵ at
    /// the measured one-way loss p (the smallest n with pⁿ ≤ 10⁻⁵, minus those two), within
    /// 1 … 8; 3 before any loss is measured (10 % loss).
    func quickAnnounceCount(_ view: MemberView) -> Int {
        guard let paths = view.paths else { return 3 }
        return min(max(paths.copiesForDelivery - 2, 1), Self.maxQuickAnnounces)
    }

    static let maxQuickAnnounces = 8
}
