/// Sending control requests and collecting their replies (Protocol.md §3.5, §6.5): pending
/// requests, retries at the idle timeout, reassembly of paged replies. A member's ``Peer`` and
/// the CLI's ``ControlRequester`` both use it.
struct Requester: Sendable {
    /// Requests collected at once; a new one beyond this finishes the oldest (reason `deadline`).
    static let pendingRequestLimit = 1_024
    /// Reply bytes one pending request holds at most; further pages are dropped (`reply_too_large`).
    static let heldBytesLimit = 4 * 1_024 * 1_024
    /// What a page or a responder costs against ``heldBytesLimit`` beyond its body bytes.
    static let heldEntryCost = 64
    static let requestRetries = 2
    /// Quick re-asks of silent members (§6.5) double their spacing this many times, then keep
    /// it until the deadline: at most one re-ask per destination every 32 first delays.
    static let quickRetryDoublings = 5
    /// … and the spacing never exceeds the deadline over this (never below the first delay):
    /// an `elect` request's first reply comes after a decision, d is then 50 ms, and 32d left
    /// five re-asks in a 3 s deadline, too few at 30 % loss (each fails one time in two).
    static let quickRetriesPerDeadline: UInt64 = 16
    /// The first quick re-ask comes this many first-reply round trips after the request …
    static let quickRetryRoundTrips: UInt64 = 4
    /// … within these bounds (and before any reply, after the upper one).
    static let quickRetryDelay: ClosedRange<UInt64> = .millis(2)...(.millis(50))

    /// A member knows how many others there are and never answers its own request; a requester
    /// that is not a member (the CLI) learns who answers from the replies alone.
    let isMember: Bool
    var requests: [UInt32: PendingRequest] = [:]

    init(isMember: Bool) {
        self.isMember = isMember
    }

    // Inlined into Peer.readNextDeadline(), which then reads it in place, not from a copy.
    @inline(__always) var nextDeadline: UInt64? { requests.values.map(\.nextWake).min() }

    /// Sends a request to the group (or by unicast to `to`); see ``Peer/request(_:args:target:to:options:now:)``.
    mutating func request(
        _ command: String, args: [String], target: String, to: Endpoint?, options: RequestOptions, now: Now,
        view: MemberView, out: inout Outbox, sending message: ((UInt32) -> Payload)? = nil
    ) -> UInt32 {
        if requests.count >= Self.pendingRequestLimit, let oldest = requests.min(by: { ($0.value.startedAt, $0.key) < ($1.value.startedAt, $1.key) }) {
            out.drop("requests_full")
            finish(oldest.key, .deadline, out: &out)
        }
        let id = out.newRequestID()
        let request = ControlRequest(requestID: id, issuedMillis: now.wallMillis, command: command, target: target, args: args)
        var pending = PendingRequest(request: request, options: options, startedAt: now.nanos)
        pending.useMemberCount = target.isEmpty && to == nil
        pending.expected = options.expected ?? (isMember && pending.useMemberCount ? view.liveCount - 1 : nil)
        if !isMember, to == nil, let responders = options.responders, !options.stream {
            pending.knownResponders = responders
            pending.expected = options.expected ?? responders.count
        }
        pending.pacing = ReplyPacing.window(responders: ReplyPacing.responders(target: target, liveCount: max(view.liveCount, options.expected ?? 0)))
        if (isMember && pending.useMemberCount) || pending.knownResponders != nil, !options.stream, (pending.expected ?? 0) > 0 {
            pending.quickRetryAt = UInt64.later(now.nanos, UInt64.later(Self.quickRetryDelay.upperBound, pending.pacing))
        }
        // Another message collected like a request (a USER_EVENT, §6.7) is what goes out and is re-sent.
        pending.message = message?(id)
        requests[id] = pending
        out.send(pending.outgoing, to: to.map { [.peer($0)] } ?? view.groupDestinations())
        return id
    }

    mutating func cancel(_ id: UInt32) {
        requests[id] = nil
    }

    mutating func finish(_ id: UInt32, _ reason: RequestEnd, out: inout Outbox) {
        guard let pending = requests.removeValue(forKey: id) else { return }
        out.emit(.requestFinished(requestID: id, reason: reason, replies: pending.done.count, expected: pending.expected))
    }

    mutating func onReply(_ reply: ControlReply, header: Header, replyTo: Endpoint, now: Now, out: inout Outbox) {
        guard var pending = requests[reply.requestID], !pending.done.contains(header.sender) else { return }
        var part = pending.partial[header.sender] ?? PartialReply(name: header.name, status: reply.status, pageCount: reply.pageCount)
        // Pages of one reply agree on their count; a page beyond it would complete a wrong body.
        if reply.pageCount != part.pageCount {
            guard pending.options.stream else {
                out.drop("reply_page_mismatch")
                return
            }
            // A stream's next event while the previous one still lacks a page: that one is lost.
            pending.held -= part.held
            part = PartialReply(name: header.name, status: reply.status, pageCount: reply.pageCount)
        }
        let newResponder = pending.responders[header.sender] == nil
        let cost = (newResponder ? Self.heldEntryCost : 0) + (part.pages[reply.page] == nil ? reply.body.count + Self.heldEntryCost : 0)
        guard cost <= Self.heldBytesLimit - pending.held else {
            out.drop("reply_too_large")
            return
        }
        pending.held += cost
        pending.lastReplyAt = now.nanos
        if pending.firstRoundTrip == nil {
            // The first reply sets the quick re-ask schedule: a few of its round trips after the
            // request (plus the responders' pacing window), no sooner than now.
            let roundTrip = now.nanos &- min(now.nanos, pending.startedAt)
            pending.firstRoundTrip = roundTrip
            if pending.quickRetryAt != nil, pending.quickRetries == 0 {
                let delay = Self.quickDelay(roundTrip: roundTrip)
                pending.quickRetryAt = max(now.nanos, UInt64.later(pending.startedAt, UInt64.later(delay, pending.pacing)))
            }
        }
        pending.responders[header.sender] = replyTo
        if pending.options.expected == nil, pending.useMemberCount {
            // member_count includes the responder and, for a member, this peer (which never replies).
            let others = Int(clamping: reply.memberCount) - (isMember ? 1 : 0)
            pending.expected = max(pending.expected ?? 0, others)
        }
        // Responders pace by their view's size: a requester without a view learns it here.
        let responders = ReplyPacing.responders(target: pending.request.target, liveCount: Int(clamping: reply.memberCount))
        pending.pacing = max(pending.pacing, ReplyPacing.window(responders: responders))
        if part.pages[reply.page] == nil {
            part.held += reply.body.count + Self.heldEntryCost
            part.pages[reply.page] = reply.body
        }
        if part.pages.count >= Int(clamping: part.pageCount) {
            pending.partial[header.sender] = nil
            pending.held -= part.held
            if !pending.options.stream { pending.done.insert(header.sender) }
            var body: [UInt8] = []
            for index in 0..<part.pageCount { body.append(contentsOf: part.pages[index] ?? []) }
            let text = String(decoding: body, as: UTF8.self)
            out.emit(.reply(requestID: reply.requestID, from: header.name, id: header.sender, status: part.status, body: text))
        } else {
            pending.partial[header.sender] = part
        }
        requests[reply.requestID] = pending
        if pending.options.stream { return }
        if let limit = pending.options.limit, pending.done.count >= limit {
            finish(reply.requestID, .limit, out: &out)
        } else if let expected = pending.expected, expected > 0, pending.done.count >= expected {
            finish(reply.requestID, .allReplied, out: &out)
        }
    }

    mutating func tick(now: Now, view: MemberView, out: inout Outbox) {
        // By request id, not in the dictionary's order (seeded per process): sends go out in
        // the same order in every run.
        for id in requests.keys.sorted() where now.nanos >= requests[id]?.quickRetryAt ?? .max {
            quickRetry(id, now: now, view: view, out: &out)
        }
        for id in requests.keys.sorted() {
            guard let pending = requests[id], now.nanos >= pending.nextWake else { continue }
            let hard = now.nanos >= UInt64.later(pending.startedAt, pending.options.deadline)
            // While silent members are being asked again, only the deadline ends the request.
            if !hard, pending.quickRetryAt != nil { continue }
            if !hard, retry(id, now: now, view: view, out: &out) { continue }
            finish(id, hard ? .deadline : .idle, out: &out)
        }
    }

    /// At an idle timeout, asks again (same request id, by unicast) the responders whose replies
    /// miss pages and, for a member whose request went to everyone, the live members that have
    /// not answered; at most twice (Protocol.md §6.5). False: nobody to ask.
    private mutating func retry(_ id: UInt32, now: Now, view: MemberView, out: inout Outbox) -> Bool {
        guard var pending = requests[id], !pending.options.stream, pending.retries < Self.requestRetries else { return false }
        let targets = pending.partial.keys.sorted().compactMap { pending.responders[$0] } + silentMembers(pending, view: view)
        guard !targets.isEmpty else { return false }
        pending.retries += 1
        pending.lastReplyAt = now.nanos
        requests[id] = pending
        out.send(pending.outgoing, to: targets.map { .peer($0) })
        return true
    }

    /// Asks the live members that have not answered again, by unicast: d, 2d, 4d … 32d apart
    /// and then every 32d until the deadline, d a few first-reply round trips (§6.5). A lost
    /// request or reply then costs milliseconds, not the idle timeout.
    private mutating func quickRetry(_ id: UInt32, now: Now, view: MemberView, out: inout Outbox) {
        guard var pending = requests[id] else { return }
        let silent = silentMembers(pending, view: view)
        guard !silent.isEmpty else {
            pending.quickRetryAt = nil
            requests[id] = pending
            return
        }
        pending.quickRetries += 1
        let base = pending.firstRoundTrip.map(Self.quickDelay(roundTrip:)) ?? Self.quickRetryDelay.upperBound
        let spacing = min(base << UInt64(min(pending.quickRetries, Self.quickRetryDoublings)),
            max(base, pending.options.deadline / Self.quickRetriesPerDeadline))
        pending.quickRetryAt = UInt64.later(now.nanos, spacing)
        requests[id] = pending
        out.send(pending.outgoing, to: silent.map { .peer($0) })
    }

    /// The first quick re-ask's delay: a few round trips, within ``quickRetryDelay``.
    static func quickDelay(roundTrip: UInt64) -> UInt64 {
        min(max(roundTrip.saturatingMultiplied(by: quickRetryRoundTrips), quickRetryDelay.lowerBound), quickRetryDelay.upperBound)
    }

    /// Live members that have not answered a request addressed to every agent, for a member;
    /// the known responders that have not, for a requester told who they are.
    private func silentMembers(_ pending: PendingRequest, view: MemberView) -> [Endpoint] {
        if let known = pending.knownResponders {
            return known.filter { !pending.done.contains($0.key) && pending.partial[$0.key] == nil }.sorted { $0.key < $1.key }.map(\.value)
        }
        guard isMember, pending.useMemberCount, let expected = pending.expected, pending.done.count < expected else { return [] }
        return view.members.values.filter { $0.isLive && !pending.done.contains($0.id) && pending.partial[$0.id] == nil }.map(\.endpoint)
    }

    /// The progress of request `id`; nil once it finished (or was never sent).
    func progress(ofRequest id: UInt32) -> RequestProgress? {
        guard let pending = requests[id] else { return nil }
        let partial = pending.partial.map { node, part in
            RequestProgress.Partial(name: part.name, id: node, received: part.pages.count, pageCount: Int(part.pageCount))
        }
        return RequestProgress(partial: partial.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) })
    }

    /// Splits `args` into groups, in order, each small enough for one CONTROL_REQUEST: at most
    /// 64 arguments and one datagram of a sender whose header takes `overhead` (Protocol.md §3.5).
    static func batches(_ args: [String], command: String, target: String, overhead: Int) -> [[String]] {
        // request_id, issued_ms, command and target with their length bytes, arg_count.
        let budget = Limits.maxDatagram - overhead - (4 + 8 + 3 + command.utf8.count + target.utf8.count)
        return paginate(args, budget: budget, maxPerPage: Limits.maxArgs) { 2 + $0.utf8.count }
    }
}
