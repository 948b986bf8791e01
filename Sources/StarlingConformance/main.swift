@_spi(Testing) import Starling
import StarlingCore
import StarlingPOSIX

// starling-conformance: checks an agent against Protocol.md from the outside (Protocol.md §9).

func usage() -> Never {
    System.write("usage: starling-conformance --group ADDR:PORT [--interface IFACE] [--target HOST:PORT] [--key-file FILE] [--cluster NAME] [--filter TEXT]\n", to: 2)
    System.exit(2)
}

var options: [String: String] = [:]
var args = Array(CommandLine.arguments.dropFirst())
while !args.isEmpty {
    let flag = args.removeFirst()
    guard ["--group", "--interface", "--target", "--key-file", "--cluster", "--filter"].contains(flag), !args.isEmpty else {
        if flag == "--help" || flag == "-h" { System.write("usage: starling-conformance --group ADDR:PORT [--interface IFACE] [--target HOST:PORT] [--key-file FILE] [--cluster NAME] [--filter TEXT]\n", to: 1); System.exit(0) }
        System.write("starling-conformance: bad argument \(flag)\n", to: 2)
        usage()
    }
    options[flag] = args.removeFirst()
}
guard let groupText = options["--group"], let group = Endpoint(parsing: groupText, defaultPort: nil) else { usage() }
let interface: Interface
// The group's family is the run's (issue 19): an IPv6 group takes the interface's link-local address.
do { interface = try Interface.resolve(options["--interface"] ?? "lo", family: group.ip.family) } catch {
    System.write("starling-conformance: \(error)\n", to: 2)
    System.exit(2)
}
var keys: [AuthKey] = []
if let path = options["--key-file"] {
    do { keys = try KeyFile.load(path) } catch {
        System.write("starling-conformance: \(error)\n", to: 2)
        System.exit(2)
    }
}
let peer: FakePeer
do {
    peer = try FakePeer(interface: interface, group: group, cluster: options["--cluster"] ?? "starling", keys: keys, name: "conformance-\(System.processID)")
} catch {
    System.write("starling-conformance: \(error)\n", to: 2)
    System.exit(2)
}
if let target = options["--target"] {
    guard let endpoint = Endpoint(parsing: target, defaultPort: nil) else { usage() }
    peer.target = endpoint
}
// Find the target (and its node id): version 2 agents send nothing periodically to the group, so
// announce ourselves and take the first agent that answers (MEMBERS) or probes us (PING).
peer.announce()
guard peer.expect(3_000, { _ in true }) != nil, peer.targetID != nil else {
    System.write("starling-conformance: no agent heard on \(group) within 3 s\n", to: 2)
    System.exit(1)
}
System.write("target \(peer.targetID!.short) at \(peer.target!)\n", to: 1)
let suite = Suite(peer: peer, interface: interface, keyed: !keys.isEmpty, wrongKey: Codec(keys: [AuthKey(Array(repeating: 0xEE, count: 32))]))
var passed = 0
var failed = 0
var skipped = 0
for (name, run) in suite.cases where options["--filter"].map({ name.contains($0) }) ?? true {
    switch run() {
    case .pass:
        passed += 1
        System.write("pass     \(name)\n", to: 1)
    case .fail(let why):
        failed += 1
        System.write("FAIL     \(name): \(why)\n", to: 1)
    case .skip(let why):
        skipped += 1
        System.write("skipped  \(name): \(why)\n", to: 1)
    }
}
System.write("\(passed) passed, \(failed) failed, \(skipped) skipped\n", to: 1)
System.exit(failed == 0 ? 0 : 1)
