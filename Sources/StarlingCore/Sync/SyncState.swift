/// Mingle (join sync, Protocol.md §3.2, §6.3.1): the search for neighbours after start.
struct MingleState: Sendable {
    enum Phase: Sendable { case idle, searching, done }
    var phase: Phase = .idle
    var requestID: UInt32 = 0
    var startedAt: UInt64 = 0
    var helloSends = 0
    var nextHelloAt: UInt64 = 0
    var lastHelloAt: UInt64 = 0
    /// The first gap between HELLO sends: 40 ms until a reply to the first HELLO measured the
    /// round trip, then 4 round trips within 2–40 ms (Protocol.md §6.3.1).
    var helloGap: UInt64 = MingleState.defaultHelloGap
    var aloneAt: UInt64 = 0
    /// Set at the first reply: when the replies that can still come have had time to come.
    var settleAt: UInt64?
    /// That time has passed: finish as soon as the pull is done.
    var settled = false
    var deadline: UInt64 = 0
    var repliers: [NodeID: (endpoint: Endpoint, digest: SetDigest)] = [:]
    var expected = 0
    var received = 0
    var triedServers: Set<NodeID> = []

    static let defaultHelloGap: UInt64 = .millis(40)
    static let helloGapBounds: ClosedRange<UInt64> = .millis(2)...defaultHelloGap
    /// Sends of one HELLO, retries included.
    static let maxHelloSends = 8

    var nextWake: UInt64? {
        guard phase == .searching else { return nil }
        return min(nextHelloAt, settleAt ?? (repliers.isEmpty ? aloneAt : deadline), deadline)
    }
}

/// One pull of revoked entries from one peer: digest first (unless everything is wanted), then
/// ranges of ids requested as bursts of pages. A lost page leaves a gap between the pages around
/// it; only that gap is asked for again (Protocol.md §6.3.2).
struct SyncSession: Sendable {
    var peer: NodeID
    var endpoint: Endpoint
    var forMingle: Bool
    var digestRequestID: UInt32?
    var mask: UInt64 = 0
    /// Outstanding bursts by request id.
    var bursts: [UInt32: Burst] = [:]
    var retryAt: UInt64
    var hardDeadline: UInt64
    /// When the last PAGE (or the start) came: silence for 8 page timeouts ends the pull.
    var lastProgressAt: UInt64
    var received = 0
    /// From each PAGE_REQUEST to its first PAGE: sets how long a silence settles the bursts.
    var roundTrip = RoundTrip()
    /// Settle timeouts in a row with no PAGE: each doubles the next (RFC 6298 §5.5).
    var silentSettles = 0

    /// One requested range (after, until) and the pages received for it so far.
    struct Burst: Sendable {
        var after: String
        var until: String
        /// When its PAGE_REQUEST went out (for the round-trip estimate).
        var requestedAt: UInt64 = 0
        /// Page index → (first id, last id); empty strings for an empty page.
        var pages: [UInt8: (first: String, last: String)] = [:]
        var lastIndex: UInt8?

        /// The ranges to ask for again: every gap between the pages that arrived, and the rest
        /// of the range after the last page that did when the burst's end is unknown.
        var missingRanges: [(after: String, until: String)] {
            var ranges: [(String, String)] = []
            var lower = after
            var gapOpen = false
            let highest = pages.keys.max()
            for index in 0...(highest ?? 0) {
                if let page = pages[index] {
                    if gapOpen, !page.first.isEmpty { ranges.append((lower, page.first)) }
                    if !page.last.isEmpty { lower = page.last }
                    gapOpen = false
                } else {
                    gapOpen = true
                }
            }
            // Pages after the highest one that arrived: unknown, so the rest of the range is open.
            if highest == nil || gapOpen || lastIndex == nil { ranges.append((lower, until)) }
            return ranges
        }
    }
}
