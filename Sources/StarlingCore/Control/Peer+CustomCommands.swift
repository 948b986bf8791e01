/// Commands an embedder registers (Protocol.md §3.5.3): the core admits their requests like any
/// other (run once, window checked with a key, paced replies), hands them to the shell as
/// ``Action/command(_:)`` and sends the shell's answer.
extension Peer {
    /// Registers `commands` for the shell to handle; returns those refused, with the reason
    /// (a built-in name, a name of more than 32 bytes, more than 256 commands).
    public mutating func register(commands: [String]) -> [(command: String, reason: String)] {
        responder.custom.register(commands).map { (command: $0.0, reason: $0.1) }
    }

    /// Stops handing `command` to the shell: its requests are answered "unknown command" again.
    public mutating func unregister(command: String) {
        responder.custom.unregister(command)
    }

    /// The commands registered, in byte order.
    public var registeredCommands: [String] { responder.custom.names.sorted().map(\.string) }

    /// Answers a registered command's request with the handler's result. A body over 64 KiB
    /// (what a reply kept for repeats may hold) is answered as an error instead. A request that
    /// was answered already, or forgotten after a minute, gets nothing.
    public mutating func answer(_ request: CommandRequest, status: ControlStatus, body: String, now: Now) -> [Action] {
        guard !stopped, let request = responder.custom.finish(request) else { return [] }
        outbox.beginInput()
        var (status, body) = (status, body)
        if body.utf8.count > RunOnceTable.bodyLimit {
            (status, body) = (.error, Responder.error("the reply of '\(request.command)' has \(body.utf8.count) bytes, more than the 65536 a reply may have"))
        }
        let control = ControlRequest(requestID: request.requestID, command: request.command, target: request.target, args: [])
        let paced = responder.answer(control, from: request.requester, status: status, body: body, replyTo: request.replyTo,
            liveCount: membership.liveCount, now: now, out: &outbox)
        answers.charge(paced, to: request.replyTo, now: now.nanos)
        return outbox.take()
    }
}
