/// Pacing of the replies to a request many agents answer (Protocol.md §6.5): each responder
/// waits a random part of a window that grows with the number of responders, so that thousands
/// of replies do not arrive in one burst and overflow the requester's receive buffer. The
/// requester stretches its idle timeout by the same window.
enum ReplyPacing {
    /// Replies that may arrive together: any receive buffer holds them.
    static let freeResponders = 64
    /// Spacing per responder beyond the free ones: 20,000 replies a second at most.
    static let spacing: UInt64 = 50_000
    static let maxWindow: UInt64 = .millis(1_000)

    /// The window over which `responders` replies are spread (0 for a few).
    static func window(responders: Int) -> UInt64 {
        guard responders > freeResponders else { return 0 }
        return min(maxWindow, UInt64(responders - freeResponders).saturatingMultiplied(by: spacing))
    }

    /// How many agents a request addressed to `target` can have answering it in a view of
    /// `liveCount` live members: a list of literal names (no `*` or `?`) has one per name; an
    /// empty target or a pattern may have every live member.
    static func responders(target: String, liveCount: Int) -> Int {
        guard !target.isEmpty, !target.unicodeScalars.contains(where: { $0 == "*" || $0 == "?" }) else { return liveCount }
        let names = 1 + target.utf8.lazy.filter { $0 == UInt8(ascii: ",") }.count
        return min(names, liveCount)
    }

    /// A delay in [0, window) drawn from `rng`.
    static func delay(window: UInt64, using rng: inout SplitMix64) -> UInt64 {
        window == 0 ? 0 : rng.next() % window
    }
}

/// A reply held back by pacing, sent when due.
struct PacedReply: Sendable {
    let dueAt: UInt64
    let requestID: UInt32
    let status: ControlStatus
    let body: String
    let endpoint: Endpoint
}
