/// A requester that is not a member (the `starling` CLI): it sends CONTROL_REQUEST and collects
/// the replies with the same logic a member uses (``Requester``), without a view, elections or
/// a revoked set. Sans-IO like ``Peer``: every input takes the time and returns actions.
public struct ControlRequester: Sendable {
    public let config: PeerConfig
    var outbox: Outbox
    var intake: Intake
    var requester = Requester(isMember: false)
    /// Where requests to everyone go: the group, or the seeds when multicast is off.
    let view: MemberView

    public init(config: PeerConfig) {
        self.config = config
        var rng = SplitMix64(seed: config.randomSeed)
        outbox = Outbox(config: config, clock: LamportClock(), firstRequestID: UInt32(truncatingIfNeeded: rng.next()) | 1)
        intake = Intake(config: config)
        view = MemberView(members: [:], me: config.id, liveCount: 1, aliveCount: 0, multicast: config.multicast, seeds: config.seeds)
    }

    public var counters: Counters { outbox.counters }
    public var clock: LamportClock { outbox.clock }

    /// Sends `command` (see ``Peer/request(_:args:target:to:options:now:)``).
    public mutating func request(
        _ command: String, args: [String] = [], target: String = "", to: Endpoint? = nil,
        options: RequestOptions = RequestOptions(), now: Now
    ) -> (UInt32, [Action]) {
        let id = requester.request(command, args: args, target: target, to: to, options: options, now: now, view: view, out: &outbox)
        return (id, outbox.take())
    }

    /// Feeds one received datagram: replies are taken, anything else is dropped (`not_member`).
    public mutating func onDatagram(_ bytes: UnsafeRawBufferPointer, from source: Endpoint, now: Now) -> [Action] {
        let decoded = Result { () throws(WireError) in try outbox.codec.decode(bytes) }
        guard case .accepted(let message) = intake.admit(decoded, size: bytes.count, from: source, now: now, out: &outbox) else {
            return outbox.take()
        }
        if !config.faults.contains(.noClockAdjust) { outbox.clock.adjust(to: message.header.stamp) }
        guard case .controlReply(let reply) = message.payload else {
            outbox.drop("not_member")
            return outbox.take()
        }
        let replyTo = source.with(port: message.header.replyPort)
        requester.onReply(reply, header: message.header, replyTo: replyTo, now: now, out: &outbox)
        return outbox.take()
    }

    /// Convenience for callers holding an array.
    public mutating func onDatagram(_ bytes: [UInt8], from source: Endpoint, now: Now) -> [Action] {
        bytes.withUnsafeBytes { onDatagram($0, from: source, now: now) }
    }

    /// Ends or retries the requests whose time has come.
    public mutating func onTick(now: Now) -> [Action] {
        requester.tick(now: now, view: view, out: &outbox)
        return outbox.take()
    }

    /// The earliest time at which ``onTick(now:)`` has work to do.
    public var nextDeadline: UInt64 { requester.nextDeadline ?? UInt64.max }

    /// Stops collecting a request early (the caller lost interest).
    public mutating func cancelRequest(_ id: UInt32) { requester.cancel(id) }

    /// The progress of request `id`; nil once it finished (or was never sent).
    public func progress(ofRequest id: UInt32) -> RequestProgress? { requester.progress(ofRequest: id) }

    /// Groups of `args` that each fit one request (see ``Peer/requestBatches(_:command:target:)``).
    public func requestBatches(_ args: [String], command: String, target: String = "") -> [[String]] {
        Requester.batches(args, command: command, target: target, overhead: outbox.overhead)
    }
}
