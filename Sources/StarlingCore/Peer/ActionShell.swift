/// What carries out the core's actions: the agent (sockets, log, event log, state directory),
/// the control client (one socket, one request) and the simulator (an in-memory network). Each
/// says only what an action means to it; ``perform(_:)`` is the one reader of an action list,
/// so a new kind of action is a requirement every shell answers, not a `default:` that drops it.
package protocol ActionShell {
    /// Sends one datagram. Actions are carried out in the order the core returned them.
    mutating func send(_ datagram: [UInt8], to destination: Destination)
    /// Hands over an event (a reply, the end of a request, a change of state, a drop).
    mutating func emit(_ event: PeerEvent)
    /// The revoked set changed: persist it soon. A shell without durable state does nothing.
    mutating func revokedSetChanged()
    /// An authorised `shutdown` command asked this peer to stop.
    mutating func shutdown(requestedBy requester: String)
    /// An authorised `reload` command asked the shell to re-read what it can change while
    /// running (the agent: its key file and log level).
    mutating func reload(requestedBy requester: String)
    /// A registered command was requested: run its handler and answer the core.
    mutating func run(_ command: CommandRequest)
}

extension ActionShell {
    /// Carries out `actions`, in order.
    @inlinable
    package mutating func perform(_ actions: [Action]) {
        for action in actions {
            switch action {
            case .send(let bytes, let destination): send(bytes, to: destination)
            case .emit(let event): emit(event)
            case .stateChanged: revokedSetChanged()
            case .shutdown(let requester): shutdown(requestedBy: requester)
            case .reload(let requester): reload(requestedBy: requester)
            case .command(let request): run(request)
            }
        }
    }

    package mutating func revokedSetChanged() {}
}

extension Destination {
    /// The address a socket sends to: `group` for the group.
    package func endpoint(group: Endpoint) -> Endpoint {
        switch self {
        case .group: group
        case .peer(let endpoint): endpoint
        }
    }

    /// The one peer it goes to; nil for the group.
    package var peer: Endpoint? {
        if case .peer(let endpoint) = self { endpoint } else { nil }
    }
}
