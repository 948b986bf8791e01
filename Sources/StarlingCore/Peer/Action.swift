/// Where a datagram goes.
public enum Destination: Hashable, Sendable {
    case group
    case peer(Endpoint)
}

/// What the shell must do after a call into the core.
public enum Action: Sendable {
    case send([UInt8], Destination)
    case emit(PeerEvent)
    /// The revoked set changed: persist it soon (the shell batches writes).
    case stateChanged
    /// An authorised `shutdown` command asked this peer to stop cleanly.
    case shutdown(requestedBy: String)
    /// An authorised `reload` command asked the shell to re-read its key file and log level.
    case reload(requestedBy: String)
    /// A registered command was requested: run its handler, then answer with
    /// ``Peer/answer(_:status:body:now:)`` (Protocol.md §3.5.3).
    case command(CommandRequest)
}

/// Why a request stopped collecting replies (Protocol.md §6.5).
public enum RequestEnd: String, Sendable {
    case allReplied = "all_replied"
    case limit
    case idle
    case deadline
}
