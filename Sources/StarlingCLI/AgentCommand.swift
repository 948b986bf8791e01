@_spi(Testing) import Starling
import StarlingCore
import StarlingPOSIX

/// `starling agent`: runs one peer in the foreground until SIGINT/SIGTERM.
enum AgentCommand {
    static let spec = CommandSpec(
        name: "agent", summary: "run a peer in the foreground",
        usage: "starling agent [--name NAME] [--tag KEY=VALUE]... [--interface NAME|ADDRESS] [--group ADDR:PORT] [--port PORT] [--protocol-period SECONDS] [--seed HOST:PORT]... [--key-file FILE] [--state-dir DIR] [--log-level LEVEL]",
        details: """
          --name NAME               node name, 1 to 64 bytes without control characters (default: starling-PID); unique in the cluster
          --interface NAME|ADDRESS  interface to join the group on (default: lo; env STARLING_INTERFACE);
                                    required for IPv6, whose unicast socket takes its link-local address
          --group ADDR:PORT         multicast group (default: 239.255.83.84:5354; env STARLING_GROUP);
                                    IPv6: '[ff12::5354]:5354' (the IPv6 default), with --interface
          --port PORT               unicast port (default: ephemeral)
          --cluster NAME            cluster name carried in every datagram, 1 to 32 bytes (default: starling)
          --tag KEY=VALUE           a tag of this agent (repeatable), shown by 'members' and selected by --to KEY=VALUE;
                                    keys 1 to 64 bytes without = , + * ?, values 0 to 255 bytes, 512 bytes in all
          --protocol-period S       seconds between two probes (default: 0.15)
          --seed HOST:PORT          announce to this agent by unicast (repeatable; for networks without multicast);
                                    IPv6: '[fe80::1%eth1]:PORT', the zone if any naming --interface
          --no-multicast            send only by unicast to seeds and known members
          --key-file FILE           cluster keys, one per line (env STARLING_KEY_FILE); see starling keygen;
                                    SIGHUP re-reads it (key rotation without a restart)
          --state-dir DIR           keep the clock and revoked set across restarts
          --strict-state            refuse to start when the state files are unreadable
          --quorum majority         elect only with a majority of --expect N agents
          --expect N                expected cluster size, 1 to 65535: tables sized and newcomers admitted for N agents
                                    starting within a few seconds; the base of --quorum majority
          --settle S                newcomers show ('joined', members) together once none came for S seconds,
                                    0 to 60 (default: 0.3; 0: each as it comes; at the latest 10 s after the first)
          --no-auto-elect           do not re-elect when a leader dies or leaves
          --max-revoked N           revoked set bound (default: 50000)
          --revoked-max-age S       seconds a revoked id is kept (default: 10800)
          --event-log FILE          append every event as a JSON line with its time
          --metrics ADDR:PORT       serve Prometheus metrics at http://ADDR:PORT/metrics (e.g. 127.0.0.1:9477)
          --on-event [FILTER=]CMD   run '/bin/sh -c CMD' for each event FILTER matches (repeatable), the event as JSON
                                    on stdin, STARLING_EVENT etc. in its environment; FILTER: comma-separated event
                                    names (joined, dead, leader, member, member-join, user:NAME, *, ...; README)
          --on-event-concurrency N  event handlers running at once at most (default: 4)
          --on-event-timeout S      seconds before a handler gets SIGTERM, SIGKILL 2 s later (default: 30)
          --on-event-coalesce       a waiting handler run for a user event (or a member's tags) is replaced by a newer
                                    one of the same name (or member): a burst runs the handler for the latest only
          --log-level LEVEL         debug, info, warning or error (default: info); SIGHUP re-reads it from --config
          --log-format FORMAT       text or json (one JSON object per line: time, level, agent, message, event fields)
          --config FILE             settings, one 'name = value' per line (the flags without dashes); flags win;
                                    SIGHUP and 'starling reload NAME' re-read its key-file and log-level
          --drop-rate R             fault injection: drop this fraction of received datagrams
          --send-drop-rate R        fault injection: drop this fraction of sent datagrams
          --delay-ms MS             fault injection: delay every sent datagram
          --block HOST:PORT         fault injection: neither send to nor hear this address (repeatable)
        """,
        values: ["--name", "--tag", "--interface", "--group", "--port", "--cluster", "--protocol-period", "--seed", "--key-file",
                 "--state-dir", "--quorum", "--expect", "--max-revoked", "--revoked-max-age", "--event-log", "--log-level",
                 "--drop-rate", "--send-drop-rate", "--delay-ms", "--block", "--test-fault", "--election-timeout",
                 "--log-format", "--config", "--metrics", "--on-event", "--on-event-concurrency", "--on-event-timeout", "--settle"],
        flags: ["--no-multicast", "--strict-state", "--no-auto-elect", "--on-event-coalesce"])

    static func configuration(_ args: Arguments) throws(CLIError) -> Configuration {
        var args = args
        // What the command line gave wins over the settings file, at start and at reload.
        let fixed = Set(args.values.keys).union(args.flags).map { String($0.dropFirst(2)) }
        do {
            if let path = args.value("--config") {
                guard !path.isEmpty else { throw UsageError("--config needs a path") }
                let settings: [(name: String, value: String)]
                do { settings = try SettingsFile.load(path) } catch { throw UsageError(error.description) }
                try args.merge(settings, spec: spec, path: path)
            }
            let name = args.value("--name") ?? "starling-\(System.processID)"
            try Arguments.checkText(name, "--name", Limits.nameBytes)
            var config = Configuration(name: name)
            do { config.tags = try MemberTags(parsing: args.values["--tag"] ?? []) } catch { throw UsageError("--tag: \(Escape.display(error.description))") }
            config.systemdNotify = true  // Type=notify units (contrib/starling.service); nothing without NOTIFY_SOCKET
            config.dropStartupCode = true  // an idle daemon's resident set is its working set (Benchmarks, idle)
            config.interface = args.interface()
            config.group = try args.group()
            config.port = try args.number("--port", UInt16(0)...UInt16.max) ?? 0
            config.cluster = try args.cluster()
            if let seconds = try args.seconds("--protocol-period", 0.01...60) {
                // The ping timeout keeps its share of the period (40 ms of 150 by default).
                config.protocolPeriod = .milliseconds(Int64(seconds * 1000))
                config.pingTimeout = .microseconds(Int64(seconds * 1_000_000 * 4 / 15))
            }
            config.seeds = try (args.values["--seed"] ?? []).map { (text) throws(UsageError) in
                try args.clusterEndpoint(text, "--seed", group: config.group, defaultPort: nil)
            }
            config.multicast = !args.has("--no-multicast")
            if !config.multicast && config.seeds.isEmpty { throw UsageError("--no-multicast needs at least one --seed") }
            config.keyFile = try args.keyFile()
            config.settingsFile = args.value("--config")
            config.settingsFixed = Set(fixed)
            config.stateDirectory = args.value("--state-dir")
            if config.stateDirectory?.isEmpty == true { throw UsageError("--state-dir needs a path") }
            config.strictState = args.has("--strict-state")
            let expect = try args.number("--expect", 1...65535)
            config.expectedMembers = expect ?? 0
            if let quorum = args.value("--quorum") {
                guard quorum == "majority" else { throw UsageError("--quorum takes 'majority'") }
                guard let expect else { throw UsageError("--quorum majority needs --expect N") }
                config.quorum = expect
            }
            if let seconds = try args.seconds("--settle", 0...60) { config.settleInterval = .microseconds(Int64(seconds * 1_000_000)) }
            config.autoReelect = !args.has("--no-auto-elect")
            if let millis = try args.number("--election-timeout", Int64(10)...60_000) { config.electionTimeout = .milliseconds(millis) }
            config.revokedMaxCount = try args.number("--max-revoked", 1...10_000_000) ?? 50_000
            if let seconds = try args.seconds("--revoked-max-age", 1...31_536_000) { config.revokedMaxAge = .milliseconds(Int64(seconds * 1000)) }
            config.eventLog = args.value("--event-log")
            if let path = config.eventLog { try checkAppendable(path) }
            config.metrics = try args.value("--metrics").map { (text) throws(UsageError) in try args.endpoint(text, "--metrics", defaultPort: nil) }
            try eventHandlers(args, &config)
            config.faults.receiveDropRate = try rate(args, "--drop-rate")
            config.faults.sendDropRate = try rate(args, "--send-drop-rate")
            config.faults.delayNanos = (try args.number("--delay-ms", UInt64(0)...10_000) ?? 0) * 1_000_000
            for text in args.values["--block"] ?? [] { config.faults.blocked.insert(try args.clusterEndpoint(text, "--block", group: config.group, defaultPort: 0)) }
            for name in args.values["--test-fault"] ?? [] {
                guard let fault = PeerConfig.Fault(rawValue: name) else {
                    throw UsageError("--test-fault takes one of \(PeerConfig.Fault.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                config.protocolFaults.insert(fault)
            }
            let levelName = args.value("--log-level") ?? "info"
            guard let level = LogLevel(name: levelName) else { throw UsageError("--log-level takes debug, info, warning or error") }
            config.logLevel = level
            guard let format = LogFormat(rawValue: args.value("--log-format") ?? "text") else { throw UsageError("--log-format takes text or json") }
            config.logFormat = format
            return config
        } catch {
            throw CLIError(error)
        }
    }

    /// The agent opens the event log after it has joined; a path it cannot append to is found
    /// here instead, before anything starts (issue 14 item 26).
    private static func checkAppendable(_ path: String) throws(UsageError) {
        guard !path.isEmpty else { throw UsageError("--event-log needs a path") }
        do {
            System.close(try System.openAppend(path))
        } catch {
            throw UsageError("--event-log \(Escape.display(path)): cannot open it for appending: \(Errno(error.rawValue).description)")
        }
    }

    /// `--on-event` specs (issue 18): a bad one is a usage error naming it.
    private static func eventHandlers(_ args: Arguments, _ config: inout Configuration) throws(UsageError) {
        for spec in args.values["--on-event"] ?? [] {
            do { config.eventHandlers.append(try EventHandler(parsing: spec)) } catch {
                guard case .invalidConfiguration(_, let reason) = error else { throw UsageError(error.description) }
                throw UsageError("--on-event \(reason)")
            }
        }
        config.eventHandlerConcurrency = try args.number("--on-event-concurrency", 1...64) ?? 4
        if let seconds = try args.seconds("--on-event-timeout", 0.01...86_400) { config.eventHandlerTimeout = .milliseconds(Int64(seconds * 1000)) }
        config.eventHandlerCoalesce = args.has("--on-event-coalesce")
    }

    private static func rate(_ args: Arguments, _ name: String) throws(UsageError) -> Double {
        guard let text = args.value(name) else { return 0 }
        guard let value = Double(text), (0...1).contains(value) else { throw UsageError("\(name) takes a fraction from 0 to 1") }
        return value
    }

    static func run(_ args: Arguments) throws(CLIError) -> Int32 {
        let config = try configuration(args)
        let agent: Agent
        do {
            agent = try Agent(config)
        } catch {
            // A missing interface, a busy port or a bad key file is the operator's to fix: exit 2.
            throw .usage(UsageError(error.description))
        }
        do { try agent.runOnCurrentThread(handlingSignals: true) } catch { throw .failed(error.description) }
        return 0
    }
}

enum CLIError: Error {
    case usage(UsageError)
    case failed(String)

    /// Bad flags, interfaces, ports and key files are the operator's to fix (exit 2); anything
    /// else is a failure (exit 1).
    init(_ error: any Error) {
        switch error {
        case let error as UsageError: self = .usage(error)
        case let error as AgentError: self = .usage(UsageError(error.description))
        case let error as CLIError: self = error
        default: self = .failed("\(error)")
        }
    }
}
