@_spi(Testing) import Starling
import StarlingCore
import StarlingPOSIX

// `starling`: one binary, every subcommand. A thin layer over the Starling library.

let clientDetails = """
      --group ADDR:PORT       multicast group (default: 239.255.83.84:5354; env STARLING_GROUP);
                              IPv6: '[ff12::5354]:5354', with --interface
      --interface NAME|ADDR   interface to send on (default: lo; env STARLING_INTERFACE; required for IPv6)
      --to NAME               ask only this agent, a glob such as 'web-*', a tag such as 'role=web', terms that must
                              all hold joined by '+' ('web-*+zone=a'), or a comma list of these (at most 128 bytes)
      --timeout SECONDS       give up after this long (default: 2)
      --json                  print exactly one JSON document
      --key-file FILE         cluster keys (env STARLING_KEY_FILE)
      --cluster NAME          cluster name, 1 to 32 bytes (default: starling)
      --seed HOST:PORT        ask this agent by unicast (clusters run with --no-multicast); IPv6: '[fe80::1%eth1]:PORT'
    """

/// A client command; `extra` adds options of its own (name and help line).
func clientSpec(_ name: String, _ summary: String, _ usage: String, positional: ClosedRange<Int> = 0...0,
                extra: [(option: String, help: String)] = []) -> CommandSpec {
    CommandSpec(name: name, summary: summary, usage: usage, details: extra.map { "  \($0.help)\n" }.joined() + clientDetails,
        values: CommandSpec.clientValues.union(extra.map { $0.option }), flags: CommandSpec.clientFlags, positional: positional)
}

let specs: [CommandSpec] = [
    AgentCommand.spec,
    clientSpec("members", "print an agent's membership view", "starling members [--json] [--to NAME]"),
    clientSpec("ping", "ping every agent (or --to NAME) and list who answered", "starling ping [--json] [--to NAME]"),
    clientSpec("stats", "counters and state of every agent", "starling stats [--json] [--to NAME]"),
    clientSpec("revoke", "revoke ids on every agent; answers once stored", "starling revoke ID... [--file FILE|-] [--json]",
        positional: 0...Int.max, extra: [("--file", "--file FILE|-           ids to revoke, one per line (- reads standard input; # comments)")]),
    clientSpec("revoked", "list an agent's revoked ids, page by page", "starling revoked [--limit N] [--json] [--to NAME]",
        extra: [("--limit", "--limit N               list at most N ids (default: all)")]),
    clientSpec("clock", "print every agent's Lamport clock", "starling clock [--json]"),
    clientSpec("elect", "hold an election for TOPIC and print the agreed leader", "starling elect TOPIC [--json]", positional: 1...1),
    clientSpec("leader", "print an agent's leader for TOPIC", "starling leader TOPIC [--json] [--to NAME]", positional: 1...1),
    clientSpec("shutdown", "ask one agent to stop cleanly (needs a cluster key)", "starling shutdown NAME", positional: 1...1),
    clientSpec("reload", "ask one agent to re-read its key file and log level, as SIGHUP does (needs a cluster key)",
        "starling reload NAME", positional: 1...1),
    clientSpec("keys", "list the fingerprints of the keys every agent holds (never the keys)", "starling keys list [--json] [--to NAME]",
        positional: 1...1),
    clientSpec("watch", "stream cluster events as they happen", "starling watch [--json] [--to NAME]"),
    clientSpec("call", "run a command an embedding program registered (agent.handle) on every agent and print each result",
        "starling call COMMAND [ARG...] [--json] [--to NAME]", positional: 1...65),
    clientSpec("event", "send a user event to every agent (one agent, --to or the first to answer, is its origin)",
        "starling event NAME [PAYLOAD | --file FILE|-] [--json] [--to NAME]", positional: 1...2,
        extra: [("--file", "--file FILE|-           the payload (UTF-8, at most 1024 bytes) from a file (- reads standard input)")]),
    clientSpec("top", "full-screen live dashboard (q or Ctrl-C quits)", "starling top"),
    CommandSpec(name: "demo", summary: "start N agents on loopback and show discovery, mingle, revoke, election and failure detection",
        usage: "starling demo [--peers N] [--ipv6]",
        details: """
              --peers N   how many agents (2 to 30, default 5)
              --ipv6      over IPv6 on ::1; IPv6 multicast does not flow on lo, so the agents find each
                          other by seeds, without multicast (Tests/netns/lan.sh --ipv6 shows multicast)
            """,
        values: ["--peers"], flags: ["--ipv6"]),
    CommandSpec(name: "keygen", summary: "print a new random 256-bit cluster key", usage: "starling keygen > cluster.key && chmod 600 cluster.key", details: ""),
    CommandSpec(name: "help", summary: "show help for a command", usage: "starling help [COMMAND]", details: "", positional: 0...1),
]

func usage() -> String {
    var text = "starling — a brokerless peer-to-peer cluster daemon\n\nusage: starling COMMAND [OPTIONS]\n\ncommands:\n"
    let width = specs.map { $0.name.count }.max() ?? 8
    for spec in specs { text += "  \(spec.name)\(String(repeating: " ", count: width - spec.name.count))  \(spec.summary)\n" }
    text += "\nstarling help COMMAND (or starling COMMAND --help) shows a command's options."
    return text
}

func help(_ spec: CommandSpec) -> String {
    "usage: \(spec.usage)\n\n\(spec.summary)\n" + (spec.details.isEmpty ? "" : "\noptions:\n\(spec.details)")
}

func main() -> Int32 {
    let argv = Array(CommandLine.arguments.dropFirst())
    guard let name = argv.first else {
        System.write(usage() + "\n", to: 2)
        return 2
    }
    if name == "--help" || name == "-h" {
        Output.line(usage())
        return 0
    }
    if name == "--version" {
        Output.line("starling \(PeerConfig.softwareVersion) (protocol version \(Limits.version))")
        return 0
    }
    guard let spec = specs.first(where: { $0.name == name }) else {
        Output.error("unknown command '\(name)'")
        System.write(usage() + "\n", to: 2)
        return 2
    }
    let rest = Array(argv.dropFirst())
    if rest.contains("--help") || rest.contains("-h") {
        Output.line(help(spec))
        return 0
    }
    do {
        let args: Arguments
        do { args = try Arguments(rest, spec: spec) } catch { throw CLIError.usage(error) }
        switch name {
        case "agent": return try AgentCommand.run(args)
        case "help":
            guard let topic = args.positional.first else { Output.line(usage()); return 0 }
            guard let target = specs.first(where: { $0.name == topic }) else { throw CLIError.usage(UsageError("no command '\(topic)'")) }
            Output.line(help(target))
            return 0
        case "keygen":
            do { Output.line(try KeyFile.generate()) } catch { throw CLIError.failed("\(error)") }
            return 0
        case "demo": return try Demo.run(args)
        case "top": return try Top.run(args)
        default:
            let client = try Client(args)
            switch name {
            case "members": return client.members()
            case "ping": return client.ping()
            case "stats": return client.stats()
            case "revoke": return try client.revoke()
            case "revoked": return try client.revoked()
            case "clock": return client.clock()
            case "elect": return try client.elect()
            case "leader": return try client.leader()
            case "shutdown": return try client.one("shutdown", done: "is stopping")
            case "reload": return try client.one("reload", done: "is reloading (its log says what changed)")
            case "keys": return try client.keys()
            case "watch": return client.watch()
            case "call": return try client.call()
            case "event": return try client.event()
            default: return 2
            }
        }
    } catch CLIError.usage(let error) {
        Output.error(error.message)
        System.write("usage: \(spec.usage)\n", to: 2)
        return 2
    } catch CLIError.failed(let message) {
        Output.error(message)
        return 1
    } catch {
        Output.error("\(error)")
        return 1
    }
}

System.exit(main())
