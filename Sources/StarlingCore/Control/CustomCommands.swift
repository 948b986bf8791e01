/// A request for a command the embedder registered (Protocol.md §3.5.3). The shell runs the
/// command's handler and answers with ``Peer/answer(_:status:body:now:)``; the core keeps the
/// reply for repeats and paces it like any other (§6.5).
public struct CommandRequest: Sendable, Hashable {
    public let requestID: UInt32
    /// The requester's node id and name, from the datagram's (authenticated, with a key) header.
    public let requester: NodeID
    public let requesterName: String
    public let command: String
    public let args: [String]
    let target: String
    let replyTo: Endpoint

    var key: RequestKey { RequestKey(sender: requester, requestID: requestID) }
}

/// The commands an embedder registered and the requests their handlers are running
/// (Protocol.md §3.5.3, bounds in §6.6).
struct CustomCommands: Sendable {
    /// Handlers running at once; a request beyond is refused (`commands_full`).
    static let runningLimit = 256
    /// A handler that has not answered by then is forgotten (its requester gave up long before).
    static let lifetime: UInt64 = .millis(60_000)
    /// Commands that can be registered at most.
    static let registeredLimit = 256
    /// The commands every agent answers itself: they cannot be registered.
    static let builtIn: Set<ByteString> = Set(["ping", "stats", "members", "revoke", "revoked", "clock", "elect", "leader",
        "shutdown", "reload", "keys", "watch"].map { ByteString($0) })

    private(set) var names: Set<ByteString> = []
    private(set) var running: [RequestKey: (request: CommandRequest, expires: UInt64)] = [:]

    func handles(_ command: String) -> Bool { !names.isEmpty && names.contains(ByteString(command)) }

    /// Registers `commands`; returns those refused, each with the reason.
    mutating func register(_ commands: [String]) -> [(String, String)] {
        var refused: [(String, String)] = []
        for command in commands {
            let key = ByteString(command)
            if !Limits.commandBytes.contains(command.utf8.count) {
                refused.append((command, "a command name has 1 to \(Limits.commandBytes.upperBound) bytes"))
            } else if Self.builtIn.contains(key) {
                refused.append((command, "'\(command)' is a built-in command"))
            } else if !names.contains(key), names.count >= Self.registeredLimit {
                refused.append((command, "at most \(Self.registeredLimit) commands can be registered"))
            } else {
                names.insert(key)
            }
        }
        return refused
    }

    mutating func unregister(_ command: String) {
        names.remove(ByteString(command))
    }

    /// Notes a request handed to the shell; false when too many handlers run.
    mutating func begin(_ request: CommandRequest, now: UInt64) -> Bool {
        guard running.count < Self.runningLimit else { return false }
        running[request.key] = (request, UInt64.later(now, Self.lifetime))
        return true
    }

    /// Takes a running request back for its answer; nil when it is not running (answered
    /// already, or forgotten).
    mutating func finish(_ request: CommandRequest) -> CommandRequest? {
        running.removeValue(forKey: request.key)?.request
    }

    mutating func prune(now: UInt64) {
        guard running.contains(where: { $0.value.expires <= now }) else { return }
        running = running.filter { $0.value.expires > now }
    }
}
