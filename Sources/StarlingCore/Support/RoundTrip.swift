/// A smoothed round-trip time and its variation, as TCP keeps them (RFC 6298): the first sample
/// sets SRTT = R and RTTVAR = R/2; each later one RTTVAR = 3/4 RTTVAR + 1/4 |SRTT − R| and
/// SRTT = 7/8 SRTT + 1/8 R. A retry waits SRTT + 4 RTTVAR, within the caller's bounds.
struct RoundTrip: Sendable, Equatable {
    private(set) var smoothed: UInt64?
    private(set) var variation: UInt64 = 0

    mutating func add(_ sample: UInt64) {
        guard let srtt = smoothed else {
            smoothed = sample
            variation = sample / 2
            return
        }
        let difference = srtt > sample ? srtt - sample : sample - srtt
        variation = variation / 4 * 3 + difference / 4
        smoothed = srtt / 8 * 7 + sample / 8
    }

    /// How long to wait for an answer before asking again: SRTT + 4 RTTVAR within `bounds`, or
    /// the upper bound before any sample.
    func timeout(within bounds: ClosedRange<UInt64>) -> UInt64 {
        guard let srtt = smoothed else { return bounds.upperBound }
        let value = srtt.saturatingAdd(variation.saturatingMultiplied(by: 4))
        return min(max(value, bounds.lowerBound), bounds.upperBound)
    }
}
