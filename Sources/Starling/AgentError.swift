import StarlingCore
import StarlingPOSIX

/// Everything that can go wrong in the agent layer, each with a message fit for an operator.
public enum AgentError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A ``Configuration`` field out of range; `field` is its Swift name.
    case invalidConfiguration(field: String, reason: String)
    /// The interface is not there, has no IPv4 address, or names none.
    case interface(Interface.LookupError)
    /// A socket could not be opened, configured or bound.
    case socket(Errno)
    /// With ``Configuration/strictState``: a state file is unreadable.
    case corruptState(path: String, reason: String)
    /// The state directory or one of its files cannot be used (missing and not creatable, not a
    /// directory, not writable, a state file that is a link or not a regular file).
    case stateDirectory(String)
    /// A key file cannot be read, is readable by others, holds a malformed key, or (on reload)
    /// would turn authentication on or off.
    case keyFile(String)
    /// ``Agent/run(handlingSignals:)`` or ``Agent/start()`` was called before: an agent runs once.
    case alreadyStarted
    /// The loop thread could not be started.
    case thread(Errno)
    /// The agent is not running (not started yet, or stopped) and cannot carry out the call.
    case notRunning
    /// The calling task was cancelled before the call finished.
    case cancelled
    /// No answer within the call's timeout.
    case timedOut
    /// An argument the protocol cannot carry or a bound refuses (a topic of more than 64 bytes).
    case invalidArgument(String)
    /// Quorum mode: the election for `topic` could not decide with the members alive.
    case noQuorum(topic: String, have: Int, need: Int)

    /// The operator's message.
    public var description: String {
        switch self {
        case .invalidConfiguration(let field, let reason): "configuration: \(field) \(reason)"
        case .interface(let error): error.description
        case .socket(let errno) where errno == .addressInUse: "\(errno.description) (is another agent using this port?)"
        case .socket(let errno): errno.description
        case .corruptState(let path, let reason): "state file \(path) is unreadable (\(reason)); --strict-state refuses to start"
        case .keyFile(let message): message
        case .stateDirectory(let message): message
        case .alreadyStarted: "the agent was already started (an Agent runs once)"
        case .thread(let errno): "cannot start the agent's thread: \(errno)"
        case .notRunning: "the agent is not running"
        case .cancelled: "cancelled"
        case .timedOut: "timed out"
        case .invalidArgument(let message): message
        case .noQuorum(let topic, let have, let need): "election '\(topic)': no quorum (\(have) of \(need) needed)"
        }
    }
}
