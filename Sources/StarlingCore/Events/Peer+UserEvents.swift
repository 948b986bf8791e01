/// User events (issue 18, Protocol.md §3.6, §6.7): the origin delivers its event to itself,
/// multicasts one USER_EVENT and re-sends it by unicast to each live member that has not
/// acknowledged, on the control requester's quick re-ask schedule (§6.5) — the same code that
/// re-asks silent members for a revoke. Receivers deliver each (origin, sequence) once and
/// acknowledge every copy with a CONTROL_REPLY, the first after a pacing delay.
extension Peer {
    /// Sends user event `name` with `payload` to every live member and delivers it here too.
    /// Acknowledgements arrive as `.reply` events; the request ends (`.requestFinished`) when
    /// every live member acknowledged or at the deadline (at most 30 s). Returns nil, sending
    /// nothing, for a name or payload outside Protocol.md §3.6's limits or once this boot sent
    /// 2^32 − 1 events.
    public mutating func sendUserEvent(
        _ name: String, payload: String, options: RequestOptions = RequestOptions(deadline: .millis(5_000)), now: Now
    ) -> (event: UserEvent, requestID: UInt32, actions: [Action])? {
        guard UserEvent.isValidName(name), Limits.userEventPayloadBytes.contains(payload.utf8.count),
              let sequence = userEvents.nextSequence() else { return nil }
        let (event, id) = originate(name, payload: payload, sequence: sequence, options: options, now: now)
        publish(since: 0, now: now)
        return (event, id, outbox.take())
    }

    /// Delivers here, then sends; shared by the API and the `event` command.
    mutating func originate(_ name: String, payload: String, sequence: UInt32, options: RequestOptions, now: Now) -> (UserEvent, UInt32) {
        // The event is a local event of the clock (§4): its stamp precedes every copy's header.
        let stamp = outbox.clock.tick()
        var options = options
        options.deadline = min(options.deadline, UserEventLog.maxDelivery)
        options.expected = membership.liveCount - 1
        var event = UserEvent(requestID: 0, sequence: sequence, stamp: stamp, name: name, payload: payload)
        outbox.emit(.userEvent(name: name, payload: payload, origin: config.name, originID: config.id, sequence: sequence, stamp: stamp))
        let id = requester.request("user-event", args: [], target: "", to: nil, options: options, now: now,
            view: membership.view, out: &outbox) { id in
                event.requestID = id
                return .userEvent(event)
            }
        event.requestID = id
        if options.expected == 0 { requester.finish(id, .allReplied, out: &outbox) }
        return (event, id)
    }

    /// A USER_EVENT from its origin (the header's sender): delivered if new, acknowledged always.
    mutating func onUserEvent(_ event: UserEvent, header: Header, replyTo: Endpoint, now: Now) {
        let fresh = userEvents.record(origin: header.sender, sequence: event.sequence, now: now.nanos, out: &outbox)
        if fresh {
            outbox.emit(.userEvent(name: event.name, payload: event.payload, origin: header.name, originID: header.sender,
                sequence: event.sequence, stamp: event.stamp))
        } else {
            outbox.drop("user_event_repeat")
        }
        let paced = responder.acknowledge(event.requestID, paced: fresh, replyTo: replyTo, liveCount: membership.liveCount,
            now: now, out: &outbox)
        answers.charge(paced, to: replyTo, now: now.nanos)
    }
}

extension Responder {
    /// Acknowledges a user event (§6.7): a CONTROL_REPLY, status 0, body `{"name": …}`. The first
    /// copy's acknowledgement waits a random part of the pacing window of a request every live
    /// member answers (§6.5), so that thousands of members do not answer the origin at once; a
    /// repeat (the origin did not hear the first) is answered at once. Returns the bytes held back.
    mutating func acknowledge(_ requestID: UInt32, paced: Bool, replyTo: Endpoint, liveCount: Int, now: Now, out: inout Outbox) -> UInt64 {
        let body = JSON.object([("name", .string(config.name))]).serialized()
        let delay = paced ? ReplyPacing.delay(window: ReplyPacing.window(responders: liveCount), using: &rng) : 0
        guard delay > 0, self.paced.count < Self.pacedReplyLimit else {
            if delay > 0 { out.drop("paced_full") }
            sendReply(requestID: requestID, status: .ok, body: body, to: replyTo, liveCount: liveCount, out: &out)
            return 0
        }
        self.paced.append(PacedReply(dueAt: UInt64.later(now.nanos, delay), requestID: requestID, status: .ok, body: body, endpoint: replyTo))
        return UInt64(body.utf8.count + out.overhead + 13)
    }
}

extension Peer {
    /// `event NAME [PAYLOAD]` (§3.5.1): this agent becomes the event's origin. The target must
    /// name exactly this agent, or every agent matching would send the event once each.
    mutating func userEventCommand(_ request: ControlRequest, now: Now) -> (ControlStatus, String) {
        guard Glob.isLiteral(request.target) else {
            return (.refused, Responder.error("event names exactly one agent, its origin (--to NAME)"))
        }
        guard (1...2).contains(request.args.count), UserEvent.isValidName(request.args[0]) else {
            return (.error, Responder.error("event takes a name of 1 to 64 bytes without control characters or commas, and an optional payload"))
        }
        let payload = request.args.count == 2 ? request.args[1] : ""
        guard Limits.userEventPayloadBytes.contains(payload.utf8.count) else {
            return (.error, Responder.error("an event's payload is at most \(Limits.userEventPayloadBytes.upperBound) bytes (it has \(payload.utf8.count))"))
        }
        guard let sequence = userEvents.nextSequence() else {
            return (.refused, Responder.error("this agent has sent all the events one boot may send; restart it"))
        }
        let (event, _) = originate(request.args[0], payload: payload, sequence: sequence,
            options: RequestOptions(deadline: UserEventLog.maxDelivery / 6), now: now)
        return (.ok, JSON.object([("name", .string(config.name)), ("event", .string(event.name)), ("sequence", .int(event.sequence)),
            ("stamp", .int(event.stamp)), ("members", .int(membership.liveCount - 1))]).serialized())
    }
}
