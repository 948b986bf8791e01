/// Options for a request this peer sends and collects replies to.
public struct RequestOptions: Sendable {
    /// Stop after this many replies.
    public var limit: Int?
    /// Replies expected; nil lets the replies' member counts tell.
    public var expected: Int?
    /// Stop when no reply came for this long (after the first).
    public var idleTimeout: UInt64 = .millis(250)
    /// Never collect longer than this.
    public var deadline: UInt64 = .millis(2_000)
    /// Keep taking replies from the same responders (a `watch` stream) until the deadline.
    public var stream = false
    /// The agents that should answer, for a requester that is not a member (the CLI learns them
    /// from one agent's `members`): it expects one reply from each and asks the silent ones
    /// again by unicast, as a member does (Protocol.md §6.5).
    public var responders: [NodeID: Endpoint]?

    public init(limit: Int? = nil, expected: Int? = nil, idleTimeout: UInt64 = .millis(250), deadline: UInt64 = .millis(2_000)) {
        self.limit = limit
        self.expected = expected
        self.idleTimeout = idleTimeout
        self.deadline = deadline
    }
}

/// One responder's reply while its pages come in.
struct PartialReply: Sendable {
    var name: String
    var status: ControlStatus
    var pageCount: UInt16
    var pages: [UInt16: [UInt8]] = [:]
    /// What the pages cost against the request's ``Requester/heldBytesLimit``.
    var held = 0
}

struct PendingRequest: Sendable {
    var request: ControlRequest
    var options: RequestOptions
    var startedAt: UInt64
    var lastReplyAt: UInt64?
    var expected: Int?
    /// Replies' member counts tell how many to expect only when every agent is addressed.
    var useMemberCount = true
    var partial: [NodeID: PartialReply] = [:]
    var done: Set<NodeID> = []
    /// Where each responder's replies came from, to ask it again for missing pages.
    var responders: [NodeID: Endpoint] = [:]
    var retries = 0
    /// The responders' pacing window (§6.5): replies may come this much later than without it.
    var pacing: UInt64 = 0
    /// Bytes held for this request's replies (pages in, responders known), bounded by
    /// ``Requester/heldBytesLimit`` so that forged replies cannot grow a requester without end.
    var held = 0
    /// The quick re-asks of silent members (§6.5): the next one, and how many were sent.
    var quickRetryAt: UInt64?
    /// Who should answer, when the requester is not a member but was told (RequestOptions).
    var knownResponders: [NodeID: Endpoint]?
    var quickRetries = 0
    /// The first reply's round trip, which sets the quick re-ask schedule.
    var firstRoundTrip: UInt64?
    /// What is sent and re-sent instead of the CONTROL_REQUEST (a USER_EVENT, acknowledged by
    /// CONTROL_REPLYs like a request), if anything.
    var message: Payload?

    var outgoing: Payload { message ?? .controlRequest(request) }

    var nextWake: UInt64 {
        let hard = UInt64.later(startedAt, options.deadline)
        // While silent members are being asked again, the idle timeout does not apply.
        if let quickRetryAt { return min(hard, quickRetryAt) }
        guard let lastReplyAt, !options.stream else { return hard }
        return min(hard, UInt64.later(lastReplyAt, UInt64.later(options.idleTimeout, pacing)))
    }
}
