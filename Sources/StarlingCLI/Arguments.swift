import Starling
import StarlingCore
import StarlingPOSIX

/// A command-line mistake: printed with the command's usage, exit code 2.
struct UsageError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// What a subcommand accepts.
struct CommandSpec {
    let name: String
    let summary: String
    let usage: String
    let details: String
    var values: Set<String> = []
    var flags: Set<String> = []
    var positional: ClosedRange<Int> = 0...0

    static let clientValues: Set<String> = ["--group", "--interface", "--timeout", "--to", "--key-file", "--cluster", "--seed"]
    static let clientFlags: Set<String> = ["--json"]
}

/// Parsed arguments: options by name (repeatable), flags, and the rest in order.
struct Arguments {
    var positional: [String] = []
    var values: [String: [String]] = [:]
    var flags: Set<String> = []

    init(_ args: [String], spec: CommandSpec) throws(UsageError) {
        var index = 0
        while index < args.count {
            let arg = args[index]
            index += 1
            if arg == "--" {
                positional.append(contentsOf: args[index...])
                break
            }
            guard arg.hasPrefix("--"), arg.count > 2 else {
                positional.append(arg)
                continue
            }
            var name = arg
            var inline: String?
            if let equals = arg.firstIndex(of: "=") {
                name = String(arg[..<equals])
                inline = String(arg[arg.index(after: equals)...])
            }
            if spec.flags.contains(name) {
                guard inline == nil else { throw UsageError("\(name) takes no value") }
                flags.insert(name)
            } else if spec.values.contains(name) {
                if let inline {
                    values[name, default: []].append(inline)
                } else {
                    guard index < args.count else { throw UsageError("\(name) needs a value") }
                    values[name, default: []].append(args[index])
                    index += 1
                }
            } else {
                throw UsageError("unknown option \(name)")
            }
        }
        guard spec.positional.contains(positional.count) else {
            if positional.count < spec.positional.lowerBound { throw UsageError("missing argument") }
            throw UsageError("unexpected argument '\(positional[spec.positional.upperBound])'")
        }
    }

    func value(_ name: String) -> String? { values[name]?.last }
    func has(_ flag: String) -> Bool { flags.contains(flag) }

    func number<T: FixedWidthInteger>(_ name: String, _ range: ClosedRange<T>) throws(UsageError) -> T? {
        guard let text = value(name) else { return nil }
        guard let number = T(text), range.contains(number) else {
            throw UsageError("\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    func seconds(_ name: String, _ range: ClosedRange<Double>) throws(UsageError) -> Double? {
        guard let text = value(name) else { return nil }
        guard let number = Double(text), range.contains(number) else {
            throw UsageError("\(name) must be a number of seconds from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    /// An address and port, `a.b.c.d:port` or `[v6]:port`; port 0 only where `defaultPort` is 0
    /// (meaning "any port"). No zone: see ``clusterEndpoint(_:_:group:defaultPort:)``.
    func endpoint(_ text: String, _ name: String, defaultPort: UInt16?) throws(UsageError) -> Endpoint {
        let (endpoint, zone) = try parsed(text, name, defaultPort: defaultPort)
        guard zone == nil else { throw UsageError("\(name) takes no zone (%NAME), in '\(Escape.display(text))'") }
        return endpoint
    }

    private func parsed(_ text: String, _ name: String, defaultPort: UInt16?) throws(UsageError) -> (Endpoint, String?) {
        // On the command line an IPv6 address is always bracketed: `ff12::5354:5354` could be
        // an address alone or one with a port.
        if !text.hasPrefix("["), text.utf8.count(where: { $0 == UInt8(ascii: ":") }) > 1 {
            throw UsageError("\(name) '\(Escape.display(text))': \(AddressError.needsBrackets(text))")
        }
        let result: (endpoint: Endpoint, zone: String?)
        do { result = try Endpoint.parse(text, defaultPort: defaultPort) } catch {
            throw UsageError("\(name) takes an address and port 1 to 65535 (a.b.c.d:port or [v6]:port), not '\(Escape.display(text))': \(error)")
        }
        guard result.endpoint.port != 0 || defaultPort == 0 else {
            throw UsageError("\(name) takes a port 1 to 65535, not 0, in '\(Escape.display(text))'")
        }
        return result
    }

    /// An address of the cluster (a seed, a blocked peer): of the group's family (one cluster is
    /// one family, issue 19), and a zone (`[fe80::1%eth1]:5354`) only if it names `--interface`.
    func clusterEndpoint(_ text: String, _ name: String, group: Endpoint, defaultPort: UInt16?) throws(UsageError) -> Endpoint {
        let (endpoint, zone) = try parsed(text, name, defaultPort: defaultPort)
        guard endpoint.ip.family == group.ip.family else {
            throw UsageError("\(name) \(Escape.display(text)) is \(Self.familyName(endpoint.ip.family)) but the group \(group) is \(Self.familyName(group.ip.family)): one cluster is one family")
        }
        if let zone, !bytesEqual(zone, interface()) {
            throw UsageError("\(name) \(Escape.display(text)) names interface '\(Escape.display(zone))' but --interface is '\(Escape.display(interface()))': one cluster runs on one interface")
        }
        return endpoint
    }

    static func familyName(_ family: AddressFamily) -> String { family == .ipv4 ? "IPv4" : "IPv6" }

    /// Group from the flag, then STARLING_GROUP, then the default of the seeds' family
    /// (239.255.83.84:5354, or [ff12::5354]:5354 when a --seed is IPv6).
    func group() throws(UsageError) -> Endpoint {
        let text = value("--group") ?? System.environment("STARLING_GROUP")
        let group: Endpoint
        if let text {
            group = try endpoint(text, "--group", defaultPort: Configuration.defaultGroup.port)
            guard group.ip.isMulticast else { throw UsageError("--group \(text) is not a multicast address (224.0.0.0/4 or ff00::/8)") }
            guard group.port != 0 else { throw UsageError("--group \(text): the port must be 1 to 65535") }
        } else {
            let seedIsIPv6 = (values["--seed"] ?? []).contains { (try? Endpoint.parse($0))?.endpoint.ip.family == .ipv6 }
            group = seedIsIPv6 ? Configuration.defaultGroup6 : Configuration.defaultGroup
        }
        // Also for the IPv6 default a seed chose: there is no IPv6 default interface (§2.5).
        if group.ip.family == .ipv6, value("--interface") ?? System.environment("STARLING_INTERFACE") == nil {
            throw UsageError("an IPv6 group needs --interface NAME (IPv6 multicast does not flow on lo)")
        }
        return group
    }

    /// Interface from the flag, then STARLING_INTERFACE, then loopback.
    func interface() -> String {
        value("--interface") ?? System.environment("STARLING_INTERFACE") ?? "lo"
    }

    /// The cluster name: 1 to 32 bytes, no control characters.
    func cluster() throws(UsageError) -> String {
        let cluster = value("--cluster") ?? "starling"
        try Self.checkText(cluster, "--cluster", Limits.clusterBytes)
        return cluster
    }

    /// `--to`: a name, glob or comma list of at most 128 bytes (empty: every agent).
    func target() throws(UsageError) -> String {
        let target = value("--to") ?? ""
        guard Limits.targetBytes.contains(target.utf8.count) else {
            throw UsageError("--to must be at most \(Limits.targetBytes.upperBound) bytes (it has \(target.utf8.count))")
        }
        return target
    }

    /// A name, cluster or topic given on the command line: `bytes` long, no control characters
    /// (they would travel to every agent's log and table).
    static func checkText(_ text: String, _ what: String, _ bytes: ClosedRange<Int>) throws(UsageError) {
        guard bytes.contains(text.utf8.count) else {
            throw UsageError("\(what) must be \(bytes.lowerBound) to \(bytes.upperBound) bytes (it has \(text.utf8.count))")
        }
        guard Escape.display(text) == text else { throw UsageError("\(what) '\(Escape.display(text))' holds a control character") }
    }

    /// Keys from --key-file, then STARLING_KEY_FILE (an empty variable counts as unset); none
    /// when neither is set. `--key-file ""` is a mistake, not "no keys".
    func keys() throws(CLIError) -> [AuthKey] {
        guard let path = try keyFile() else { return [] }
        do { return try KeyFile.load(path) } catch { throw CLIError(error) }
    }

    /// The key file's path: --key-file, then STARLING_KEY_FILE; nil when neither is set.
    func keyFile() throws(CLIError) -> String? {
        if let path = value("--key-file"), path.isEmpty { throw .usage(UsageError("--key-file needs a path")) }
        guard let path = value("--key-file") ?? System.environment("STARLING_KEY_FILE"), !path.isEmpty else { return nil }
        return path
    }

    /// Adds the settings of a `--config` file for every option the command line did not give.
    mutating func merge(_ settings: [(name: String, value: String)], spec: CommandSpec, path: String) throws(UsageError) {
        let given = Set(values.keys).union(flags)
        var added: [String: [String]] = [:]
        for (name, value) in settings {
            let option = "--" + name
            guard option != "--config", spec.values.contains(option) || spec.flags.contains(option) else {
                throw UsageError("\(Escape.display(path)): unknown setting '\(Escape.display(name))'")
            }
            if given.contains(option) { continue }
            if spec.flags.contains(option) {
                guard value == "true" || value == "false" else { throw UsageError("\(Escape.display(path)): \(name) takes true or false") }
                if value == "true" { flags.insert(option) }
            } else {
                added[option, default: []].append(value)
            }
        }
        values.merge(added) { old, _ in old }
    }
}
