import StarlingCore
import StarlingPOSIX

/// Everything an agent needs to run, in one value. Every timing is a `Duration`; every default
/// is the one Protocol.md §6 lists, and README's "Embedding" section tabulates them. ``Agent``
/// checks the whole value before it opens a socket and names the first field that is out of
/// range (``AgentError/invalidConfiguration(field:reason:)``). The `starling agent` command
/// builds its settings through this type too, so there is one source of defaults.
///
/// The defaults stay on loopback: reaching a LAN takes an explicit interface (``lan(name:interface:)``).
public struct Configuration: Sendable {
    /// Default group: administratively scoped (RFC 2365), never routed off the LAN.
    public static let defaultGroup = Endpoint(address: 0xEFFF_5354, port: 5354)  // 239.255.83.84:5354
    /// Default IPv6 group: link-local scope (ff12::/16, transient), never routed off the link
    /// (Protocol.md §2.5, issue 19).
    public static let defaultGroup6 = Endpoint(ip: IPAddress(high: 0xFF12 << 48, low: 0x5354), port: 5354)  // [ff12::5354]:5354

    // MARK: Identity and network

    /// This node's name: 1 to 64 bytes of UTF-8 without control characters, unique in the cluster.
    public var name: String
    /// Carried in every datagram; peers of another cluster are not heard. 1 to 32 bytes.
    public var cluster = "starling"
    /// What this agent says about itself (`role=web`): shown by `members`, selected on by
    /// control targets (`--to role=web`). Changed while running with ``Agent/setTags(_:)``.
    public var tags = MemberTags.empty
    /// Whether ``tags`` came from the `tag` lines of ``settingsFile`` (then a reload may empty them).
    var tagsFromSettings = false
    /// Interface name or address to join the group on and send from. An IPv6 cluster needs a
    /// real interface (IPv6 multicast does not flow on `lo`); its link-local address is used
    /// unless an address of it is named.
    public var interface = "lo"
    /// The multicast group (224.0.0.0/4, or ff00::/8 for an IPv6 cluster) peers discover each
    /// other on. Its family is the cluster's: seeds must be of it too.
    public var group = Configuration.defaultGroup
    /// Unicast port; 0 picks an ephemeral one.
    public var port: UInt16 = 0
    /// Multicast TTL, 1 to 255; 1 keeps datagrams on the local link.
    public var ttl: UInt8 = 1
    /// Agents to announce to by unicast (networks without multicast).
    public var seeds: [Endpoint] = []
    /// Send to the group; false for networks without multicast (then `seeds` are required).
    public var multicast = true
    /// Cluster keys; with any, every datagram is authenticated and unauthenticated ones dropped.
    public var keys: [AuthKey] = []
    /// A key file (`starling keygen`, one key per line, mode 600) to take the keys from instead:
    /// read at start and again at every ``Agent/reload()``, so keys rotate without a restart.
    public var keyFile: String?
    /// A settings file (`name = value` lines, the `starling agent` flags without dashes; see
    /// ``SettingsFile``): at start and at every ``Agent/reload()`` the agent takes its
    /// `log-level` and `key-file` (over ``logLevel`` and ``keyFile``), except those named in
    /// ``settingsFixed``.
    public var settingsFile: String?
    /// Settings of ``settingsFile`` that do not apply (the `starling agent` command lists the
    /// ones its flags gave: flags win, at start and at reload).
    public var settingsFixed: Set<String> = []
    /// Socket receive buffer asked of the kernel, 64 KiB to 256 MiB.
    public var receiveBufferBytes = 4 << 20

    // MARK: Failure detection (SWIM with Lifeguard, Protocol.md §6.1)

    /// One member probed per period, 1 ms to 60 s.
    public var protocolPeriod: Duration = .milliseconds(150)
    /// No ACK by then (times local health): helpers are asked to probe. Shorter than the period.
    public var pingTimeout: Duration = .milliseconds(40)
    /// Helpers asked to probe a member that did not answer (k), 0 to 16.
    public var indirectProbes = 3
    /// Members that check a fresh suspicion at once, and that answer a newcomer, 1 to 16.
    public var witnesses = 3
    /// Lifeguard's suspicion timeout: it starts at β · α · max(1, log10 n) · period and falls to
    /// α · max(1, log10 n) · period as confirmations arrive. α 0.1 to 100, β 1 to 100.
    public var suspicionAlpha = 1.5
    /// See ``suspicionAlpha``.
    public var suspicionBeta = 6.0
    /// Independent confirmations that bring a suspicion down to its minimum (K), 0 to 16.
    public var confirmationsWanted = 3
    /// Membership changes piggybacked on one PING or ACK at most, 0 to 32.
    public var piggybackPerPing = 8
    /// How many agents the cluster is expected to hold, 0 to 65,535 (0, the default: unknown).
    /// The view's tables are reserved for that many at start, and newcomers are admitted at
    /// N/4 a second after a burst of N/2 where that beats the default guard against floods
    /// (Protocol.md §6.6; at most the view's bound of 16,384 counts). `--expect N` sets it.
    public var expectedMembers = 0
    /// Full-view exchange with one random member (anti-entropy), at least one period, at most 1 h.
    public var pushPullInterval: Duration = .seconds(5)
    /// Newcomers enter the published view (`joined`, ``Agent/members()``) together once none
    /// came for this long, 0 to 60 s; 0 shows each as it comes (Protocol.md §6.1.8). `--settle S` sets it.
    public var settleInterval: Duration = .milliseconds(300)
    /// ...and at the latest this long after the first held back, 1 ms to 1 h.
    public var publishWithin: Duration = .seconds(10)
    /// Dead and departed members are forgotten after this, at least one period, at most 1 day.
    public var reapAfter: Duration = .seconds(60)
    /// ANNOUNCEs sent at start at most, 1 to 16: the repeats end at the first answer (Protocol.md §6.1.2).
    public var announceCount = 3

    // MARK: Mingle (Protocol.md §6.3)

    /// With no answer by then the agent says it is alone (and keeps listening).
    public var aloneAfter: Duration = .milliseconds(250)
    /// Syncing the clock and the revoked set gives up after this, 1 ms to 10 min.
    public var mingleDeadline: Duration = .seconds(3)

    // MARK: Revoked set

    /// Ids held at most (the oldest go first), 1 to 10,000,000.
    public var revokedMaxCount = 50_000
    /// Ids older than this are forgotten, 1 s to 365 days.
    public var revokedMaxAge: Duration = .seconds(3 * 3_600)

    // MARK: Elections (Protocol.md §6.4)

    /// The outer bound of an election (the wait for a live candidacy, or for votes), 10 ms to
    /// 60 s; a decision comes a decision window (10 ms) after entering a term (Protocol.md §6.4).
    public var electionTimeout: Duration = .milliseconds(500)
    /// A leader repeats its LEADER message this often, 10 ms to 1 h.
    public var leaderAnnounceInterval: Duration = .seconds(2)
    /// Majority mode: the expected cluster size (1 to 65,535); nil lets every partition elect.
    public var quorum: Int?
    /// Start a new election for a topic when its leader dies or leaves.
    public var autoReelect = true

    // MARK: Durable state and output

    /// Where the clock and the revoked set are kept across restarts; nil keeps nothing. It must
    /// be (or be creatable as) a directory this process can write in.
    public var stateDirectory: String?
    /// Refuse to start on an unreadable state file instead of setting it aside.
    public var strictState = false
    /// Append every event as one JSON line with a microsecond wall-clock time.
    public var eventLog: String?
    /// Log lines from this level up go to standard error (reload can change it).
    public var logLevel: LogLevel = .info
    /// Text for people, or one JSON object per line for log collectors.
    public var logFormat: LogFormat = .text
    /// Events each ``Agent/events`` subscriber may have waiting, 1 to 1,048,576: past it the
    /// oldest waiting event is dropped (and counted in ``Agent/droppedEvents``).
    public var eventBufferSize = 1_024
    /// Speak systemd's readiness protocol when NOTIFY_SOCKET is set: READY=1 once synced,
    /// STOPPING=1 at shutdown, WATCHDOG=1 from the loop when WATCHDOG_USEC asks. Off for
    /// embedders (their process may not be the unit's main one); `starling agent` turns it on.
    public var systemdNotify = false
    /// A few seconds after start, unmap the process's clean code pages (``System/dropCleanCode()``)
    /// so that start-up code no longer counts in the resident set; what runs again faults back
    /// in from the page cache. Process-wide, so off for embedders; `starling agent` turns it on.
    public var dropStartupCode = false
    /// Serve Prometheus metrics at `http://ADDRESS:PORT/metrics` (TCP); nil serves none. Port 0
    /// picks one (``Agent/metricsEndpoint`` tells which). A loopback address keeps them on the host.
    public var metrics: Endpoint?
    /// Commands run for matching cluster events (``EventHandler``; `--on-event`); none by default.
    public var eventHandlers: [EventHandler] = []
    /// Event handler processes running at once at most, 1 to 64; further runs wait in a queue.
    public var eventHandlerConcurrency = 4
    /// A run still going after this gets SIGTERM, and SIGKILL 2 s later; 10 ms to 1 day.
    public var eventHandlerTimeout: Duration = .seconds(30)
    /// Serf's coalescing (issue 18): while a handler's run for a user event NAME, or for a
    /// member's `tags` change, still waits in the queue, a newer one of the same name or member
    /// takes its place (counted `handlers_coalesced`), so a burst runs the handler for the
    /// latest only. Off by default: every event runs.
    public var eventHandlerCoalesce = false

    // MARK: Testing

    /// Injected loss, delay and blocking, for tests and benchmarks only.
    @_spi(Testing) public var faults = FaultSettings()
    /// Accept any name of 1 to 64 bytes, control characters too: a hostile peer for the tests
    /// of what receivers make of one.
    @_spi(Testing) public var anyName = false
    /// Deliberate protocol faults, for the conformance suite's self-check only.
    @_spi(Testing) public var protocolFaults: Set<PeerConfig.Fault> = []

    /// Loopback defaults (``loopback(name:)``).
    public init(name: String) {
        self.name = name
    }

    /// For agents on one machine: interface `lo`, Protocol.md's timings.
    public static func loopback(name: String) -> Configuration { Configuration(name: name) }

    /// For agents on a LAN: the interface is always given, never guessed (a daemon must not
    /// start talking on a network nobody chose). Same timings as ``loopback(name:)``, which
    /// Protocol.md §6 sets for a switched LAN.
    public static func lan(name: String, interface: String) -> Configuration {
        var configuration = Configuration(name: name)
        configuration.interface = interface
        return configuration
    }
}

extension Configuration {
    /// Checks every field; the first out of range is named in the error.
    public func validate() throws(AgentError) {
        func check(_ ok: Bool, _ field: String, _ reason: @autoclosure () -> String) throws(AgentError) {
            if !ok { throw .invalidConfiguration(field: field, reason: reason()) }
        }
        try check(Limits.nameBytes.contains(name.utf8.count), "name", "must be 1 to 64 bytes of UTF-8 (it has \(name.utf8.count))")
        try check(anyName || !Self.hasControlCharacter(name), "name", "'\(Escape.display(name))' holds a control character")
        try check(Limits.clusterBytes.contains(cluster.utf8.count), "cluster", "must be 1 to 32 bytes (it has \(cluster.utf8.count))")
        try check(!Self.hasControlCharacter(cluster), "cluster", "'\(Escape.display(cluster))' holds a control character")
        try check(!interface.isEmpty, "interface", "must name an interface or an address of one")
        try check(group.ip.isMulticast, "group", "\(group) is not a multicast address (224.0.0.0/4 or ff00::/8)")
        try check(seeds.allSatisfy { $0.ip.family == group.ip.family }, "seeds",
            "mix IPv4 and IPv6: one cluster is one family, the group's (\(group))")
        try check(group.port != 0, "group", "the port must be 1 to 65535")
        try check(ttl >= 1, "ttl", "must be 1 to 255")
        try check(multicast || !seeds.isEmpty, "seeds", "without multicast at least one seed is needed")
        try check(keyFile == nil || keys.isEmpty, "keyFile", "give keys or a key file, not both")
        try check(keyFile?.isEmpty != true, "keyFile", "needs a path")
        try check(settingsFile?.isEmpty != true, "settingsFile", "needs a path")
        try check(seeds.allSatisfy { $0.port != 0 }, "seeds", "every seed needs a port from 1 to 65535")
        try check((64 << 10...256 << 20).contains(receiveBufferBytes), "receiveBufferBytes", "must be 64 KiB to 256 MiB")
        try checkDuration(protocolPeriod, "protocolPeriod", .milliseconds(1), .seconds(60))
        try checkDuration(pingTimeout, "pingTimeout", .nanoseconds(1), protocolPeriod)
        try check(pingTimeout < protocolPeriod, "pingTimeout", "must be shorter than protocolPeriod (\(protocolPeriod))")
        try check((0...16).contains(indirectProbes), "indirectProbes", "must be 0 to 16")
        try check((1...16).contains(witnesses), "witnesses", "must be 1 to 16")
        try check(suspicionAlpha.isFinite && (0.1...100).contains(suspicionAlpha), "suspicionAlpha", "must be 0.1 to 100")
        try check(suspicionBeta.isFinite && (1...100).contains(suspicionBeta), "suspicionBeta", "must be 1 to 100")
        try check((0...16).contains(confirmationsWanted), "confirmationsWanted", "must be 0 to 16")
        try check((0...32).contains(piggybackPerPing), "piggybackPerPing", "must be 0 to 32")
        try check((0...65_535).contains(expectedMembers), "expectedMembers", "must be 0 to 65,535 agents")
        try checkDuration(pushPullInterval, "pushPullInterval", protocolPeriod, .seconds(3_600))
        try checkDuration(reapAfter, "reapAfter", protocolPeriod, .seconds(86_400))
        try checkDuration(settleInterval, "settleInterval", .zero, .seconds(60))
        try checkDuration(publishWithin, "publishWithin", .milliseconds(1), .seconds(3_600))
        try check((1...16).contains(announceCount), "announceCount", "must be 1 to 16")
        try checkDuration(mingleDeadline, "mingleDeadline", .milliseconds(1), .seconds(600))
        try checkDuration(aloneAfter, "aloneAfter", .milliseconds(1), mingleDeadline)
        try check((1...10_000_000).contains(revokedMaxCount), "revokedMaxCount", "must be 1 to 10,000,000")
        try checkDuration(revokedMaxAge, "revokedMaxAge", .seconds(1), .seconds(365 * 86_400))
        try checkDuration(electionTimeout, "electionTimeout", .milliseconds(10), .seconds(60))
        try checkDuration(leaderAnnounceInterval, "leaderAnnounceInterval", .milliseconds(10), .seconds(3_600))
        try check(quorum.map { (1...65_535).contains($0) } ?? true, "quorum", "must be 1 to 65,535 agents")
        try check(stateDirectory?.isEmpty != true, "stateDirectory", "needs a path")
        try check(eventLog?.isEmpty != true, "eventLog", "needs a path")
        try check((1...1 << 20).contains(eventBufferSize), "eventBufferSize", "must be 1 to 1,048,576")
        try check(metrics.map { !$0.ip.isMulticast && $0.ip.ipv4 != 0xFFFF_FFFF } ?? true, "metrics",
            "\(metrics.map(\.description) ?? "") is a multicast or broadcast address; it needs a local address")
        try validateEventHandlers()
    }

    /// C0, DEL and C1 controls: they would travel to every agent's log and table.
    static func hasControlCharacter(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }
    }

    /// What a reload takes: the key file (the `key-file` of ``settingsFile`` unless
    /// ``settingsFixed`` names it, else ``keyFile``) and the log level (likewise `log-level`).
    func reloadable() throws(AgentError) -> (keyFile: String?, level: LogLevel, tags: MemberTags?) {
        var keyFile = self.keyFile
        var level = logLevel
        guard let path = settingsFile else { return (keyFile, level, nil) }
        var tagTexts: [String] = []
        for (name, value) in try SettingsFile.load(path) where !settingsFixed.contains(name) {
            if name == "key-file" { keyFile = value }
            if name == "log-level" {
                guard let parsed = LogLevel(name: value) else {
                    throw .invalidConfiguration(field: "settingsFile", reason: "log-level in \(Escape.display(path)) must be debug, info, warning or error")
                }
                level = parsed
            }
            if name == "tag" { tagTexts.append(value) }
        }
        // Tags given by --tag stay, and so do tags given in code while the file has no `tag`
        // line; once the tags came from the file, its `tag` lines are the tags (none: none).
        guard !settingsFixed.contains("tag"), tagsFromSettings || !tagTexts.isEmpty else { return (keyFile, level, nil) }
        do {
            return (keyFile, level, try MemberTags(parsing: tagTexts))
        } catch {
            throw .invalidConfiguration(field: "settingsFile", reason: "tag in \(Escape.display(path)): \(error)")
        }
    }

    private func checkDuration(_ value: Duration, _ field: String, _ low: Duration, _ high: Duration) throws(AgentError) {
        guard value >= low, value <= high else {
            throw .invalidConfiguration(field: field, reason: "must be \(low) to \(high) (it is \(value))")
        }
    }

    /// The core's settings derived from these (nanoseconds of the monotonic clock).
    func peerConfig(id: NodeID, replyPort: UInt16, seed: UInt64) -> PeerConfig {
        var config = PeerConfig(name: name, id: id)
        config.cluster = cluster
        config.tags = tags
        config.replyPort = replyPort
        config.protocolPeriod = protocolPeriod.nanos
        config.pingTimeout = pingTimeout.nanos
        config.indirectProbes = indirectProbes
        config.witnesses = witnesses
        config.suspicionAlpha = suspicionAlpha
        config.suspicionBeta = suspicionBeta
        config.confirmationsWanted = confirmationsWanted
        config.piggybackPerPing = piggybackPerPing
        config.expectedMembers = expectedMembers
        config.pushPullInterval = pushPullInterval.nanos
        config.settleInterval = settleInterval.nanos
        config.publishWithin = publishWithin.nanos
        config.reapAfter = reapAfter.nanos
        config.announceCount = announceCount
        config.aloneAfter = aloneAfter.nanos
        config.mingleDeadline = mingleDeadline.nanos
        config.seeds = seeds
        config.multicast = multicast
        config.keys = keys
        config.quorum = quorum
        config.autoReelect = autoReelect
        config.electionTimeout = electionTimeout.nanos
        config.leaderAnnounceInterval = leaderAnnounceInterval.nanos
        config.revokedMaxCount = revokedMaxCount
        config.revokedMaxAgeMillis = revokedMaxAge.nanos / 1_000_000
        config.faults = protocolFaults
        config.randomSeed = seed
        return config
    }
}

extension Duration {
    /// Whole nanoseconds, clamped to 0 ... UInt64.max (a validated configuration is far inside).
    var nanos: UInt64 {
        let (seconds, attoseconds) = components
        guard seconds >= 0 else { return 0 }
        let whole = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        guard !whole.overflow else { return .max }
        let sum = whole.partialValue.addingReportingOverflow(UInt64(max(0, attoseconds) / 1_000_000_000))
        return sum.overflow ? .max : sum.partialValue
    }

    /// From nanoseconds of the monotonic clock.
    static func nanos(_ value: UInt64) -> Duration {
        .seconds(Int64(value / 1_000_000_000)) + .nanoseconds(Int64(value % 1_000_000_000))
    }
}
