import StarlingCore
import StarlingPOSIX

/// Everything an agent needs to run. The defaults keep it on loopback: reaching a LAN takes an
/// explicit `interface`.
public struct AgentConfiguration: Sendable {
    /// Default group: administratively scoped (RFC 2365), never routed off the LAN.
    public static let defaultGroup = Endpoint(address: 0xEFFF_5354, port: 5354)  // 239.255.83.84:5354

    public var name: String
    public var cluster = "starling"
    /// Interface name or IPv4 address; loopback unless asked otherwise.
    public var interface = "lo"
    public var group = AgentConfiguration.defaultGroup
    /// Unicast port; 0 picks an ephemeral one.
    public var port: UInt16 = 0
    public var ttl: UInt8 = 1
    /// SWIM's protocol period: one member probed per period; the ping timeout is a quarter of it
    /// (Protocol.md §6.2).
    public var protocolPeriodMillis: UInt64 = 150
    public var seeds: [Endpoint] = []
    /// Send to the group; false for networks without multicast (then `seeds` are required).
    public var multicast = true
    public var keys: [AuthKey] = []
    /// Where the clock and the revoked set are kept across restarts; nil keeps nothing. Checked at
    /// start: it must be (or be creatable as) a directory this process can write in.
    public var stateDirectory: String?
    /// Refuse to start on an unreadable state file instead of setting it aside.
    public var strictState = false
    public var quorum: Int?
    public var autoReelect = true
    public var electionTimeoutMillis: UInt64 = 500
    public var revokedMaxCount = 50_000
    public var revokedMaxAgeMillis: UInt64 = 3 * 3_600_000
    public var faults = FaultSettings()
    /// Deliberate protocol faults, for the conformance suite's self-check only.
    public var protocolFaults: Set<PeerConfig.Fault> = []
    /// Append every event as one JSON line with a microsecond wall-clock time.
    public var eventLog: String?
    public var receiveBuffer = 4 << 20

    public init(name: String) {
        self.name = name
    }

    /// The core's settings derived from these.
    func peerConfig(id: NodeID, replyPort: UInt16, seed: UInt64) -> PeerConfig {
        var config = PeerConfig(name: name, id: id)
        config.cluster = cluster
        config.replyPort = replyPort
        config.protocolPeriod = .millis(protocolPeriodMillis)
        config.pingTimeout = .millis(max(1, protocolPeriodMillis / 4))
        config.seeds = seeds
        config.multicast = multicast
        config.keys = keys
        config.quorum = quorum
        config.autoReelect = autoReelect
        config.electionTimeout = .millis(electionTimeoutMillis)
        config.revokedMaxCount = revokedMaxCount
        config.revokedMaxAgeMillis = revokedMaxAgeMillis
        config.faults = protocolFaults
        config.randomSeed = seed
        return config
    }
}

/// Why an agent could not start. Each has a message fit for an operator.
public enum AgentError: Error, CustomStringConvertible, Sendable {
    case interface(Interface.LookupError)
    case socket(Errno)
    case invalidName(String)
    case corruptState(path: String, reason: String)
    /// The state directory or one of its files cannot be used (missing and not creatable, not a
    /// directory, not writable, a state file that is a link or not a regular file).
    case stateDirectory(String)
    case keyFile(String)

    public var description: String {
        switch self {
        case .interface(let error): error.description
        case .socket(let errno) where errno == .addressInUse: "\(errno.description) (is another agent using this port?)"
        case .socket(let errno): errno.description
        case .invalidName(let name): "node name '\(name)' must be 1 to 64 bytes of UTF-8"
        case .corruptState(let path, let reason): "state file \(path) is unreadable (\(reason)); --strict-state refuses to start"
        case .keyFile(let message): message
        case .stateDirectory(let message): message
        }
    }
}

/// Fault injection settings, re-exported for embedders, tests and benchmarks.
public typealias FaultSettings = StarlingPOSIX.FaultSettings
