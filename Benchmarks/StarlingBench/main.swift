import Starling
import StarlingCore
import StarlingPOSIX

// starling-bench: every performance figure of Starling in one run (Benchmarks/README.md).

let scenarios = ["codec", "join", "detect", "falsepos", "mingle", "revoke", "ping", "election", "idle", "receive", "sim", "sim-cost", "sim-election", "sim-loss", "attack", "handlers", "uevent", "tags"]
var selected: [String] = []
var jsonPath: String?
var quick = false
var falseposSeconds: UInt64?
var falseposLoss = 0.1
var simSizes: [Int]?
var simWarm = false
var idleSizes: [Int]?
var joinSizes: [Int]?
var arguments = Array(CommandLine.arguments.dropFirst())

/// The comma-separated sizes after `flag`, each in `range`; a usage error (exit 2) otherwise.
func sizes(_ flag: String, _ range: ClosedRange<Int>, from arguments: inout [String]) -> [Int] {
    let items = arguments.first?.split(separator: ",", omittingEmptySubsequences: false) ?? []
    let list = items.compactMap { Int($0) }
    guard !list.isEmpty, list.count == items.count, list.allSatisfy({ range.contains($0) }) else {
        System.write("\(flag) needs sizes from \(range.lowerBound) to \(range.upperBound), comma-separated\n", to: 2)
        System.exit(2)
    }
    arguments.removeFirst()
    return list
}
while !arguments.isEmpty {
    let arg = arguments.removeFirst()
    switch arg {
    case "--json":
        guard !arguments.isEmpty else { System.write("--json needs a file\n", to: 2); System.exit(2) }
        jsonPath = arguments.removeFirst()
    case "--quick": quick = true
    case "--falsepos-loss":
        // Percent of received datagrams each agent drops (10 by default; issue 21 also asks for 30).
        guard let value = arguments.first.flatMap({ Int($0) }), (0...90).contains(value) else {
            System.write("--falsepos-loss needs a percentage from 0 to 90\n", to: 2)
            System.exit(2)
        }
        arguments.removeFirst()
        falseposLoss = Double(value) / 100
    case "--falsepos-seconds":
        guard let value = arguments.first.flatMap({ UInt64($0) }) else { System.write("--falsepos-seconds needs a number\n", to: 2); System.exit(2) }
        arguments.removeFirst()
        falseposSeconds = value
    case "--sim-nodes": simSizes = sizes(arg, 2...20_000, from: &arguments)
    // The sim scenario's nodes start warm, views preloaded, instead of a cold start (issue 16's
    // steady-state figures at 10,000 without the half hour a cold start takes).
    case "--sim-warm": simWarm = true
    case "--idle-nodes": idleSizes = sizes(arg, 2...300, from: &arguments)
    case "--join-nodes": joinSizes = sizes(arg, 2...300, from: &arguments)
    case "--help", "-h":
        System.write("usage: starling-bench [SCENARIO...] [--json FILE] [--quick] [--falsepos-seconds N] [--falsepos-loss PERCENT] [--sim-nodes N,N...] [--sim-warm] [--idle-nodes N,N...] [--join-nodes N,N...]\nscenarios: \(scenarios.joined(separator: " "))\n", to: 1)
        System.exit(0)
    default:
        guard scenarios.contains(arg) else { System.write("unknown scenario '\(arg)'; known: \(scenarios.joined(separator: " "))\n", to: 2); System.exit(2) }
        selected.append(arg)
    }
}
if selected.isEmpty { selected = scenarios }
// A simulation of 10,000 peers holds 14 GB, and each datagram delivered touches a peer whose
// pages were last used long before: with 4-KB pages nearly every access also missed the TLB.
// glibc gives the heap transparent huge pages when GLIBC_TUNABLES asks, which it reads only at
// start-up, so a run of simulator scenarios alone starts itself again with it (2,000 peers:
// disturbances 33 → 25 s). Not with agent scenarios, whose processes would inherit it and grow;
// GLIBC_TUNABLES set, to anything, is left as it is.
if selected.allSatisfy({ $0.hasPrefix("sim") }), System.environment("GLIBC_TUNABLES") == nil {
    let failed = System.restart(setting: "GLIBC_TUNABLES", to: "glibc.malloc.hugetlb=1")
    System.write("starling-bench: could not restart with huge pages (\(failed)); going on without\n", to: 2)
}

#if DEBUG
System.write("""

    ************************************************************
    WARNING: starling-bench was built in DEBUG. Its figures mean
    nothing. Run: swift run -c release starling-bench
    ************************************************************


    """, to: 2)
#endif

let executable = System.executablePath()
let starling = String(executable[..<(executable.lastIndex(of: "/") ?? executable.startIndex)]) + "/starling"
let report = Report()
let cluster = ClusterScenarios(report: report, binary: starling, quick: quick)
let started = System.now().nanos
// The simulated peers grow their views in turn; a grown table's old block is returned to the
// kernel instead of staying a hole in the heap (Protocol.md A.2 item 3: 905 → 823 MB for a
// cold start of 2,000). The agents the other scenarios start are processes of their own.
if selected.contains(where: { $0.hasPrefix("sim") }) {
    System.mapLargeBlocks(from: 65_536)
    // Which heap the simulator figures were measured with (Benchmarks/README.md, "Huge pages").
    let asked = System.environment("GLIBC_TUNABLES")?.contains("glibc.malloc.hugetlb=1") == true
    report.add("sim", "heap pages: transparent huge pages asked of glibc (1 yes, 0 no)", asked ? 1 : 0, "")
}
for scenario in selected {
    System.write("== \(scenario)\n", to: 2)
    do {
        switch scenario {
        case "codec": CodecScenario.run(report, quick: quick)
        case "join": try cluster.join(sizes: joinSizes ?? (quick ? [10] : [10, 30, 100]))
        case "detect": try cluster.detect(n: quick ? 10 : 30, kills: quick ? 3 : 20)
        case "falsepos": try cluster.falsePositives(n: quick ? 10 : 30, seconds: falseposSeconds ?? (quick ? 10 : 120), loss: falseposLoss)
        case "mingle": try cluster.mingle(sizes: quick ? [0, 10_000] : [0, 10_000, 50_000])
        case "revoke", "ping", "election":
            // One cluster serves all three; run it once for whichever of them comes first.
            if selected.first(where: { ["revoke", "ping", "election"].contains($0) }) == scenario {
                try cluster.commands(n: quick ? 10 : 30, rounds: quick ? 5 : 30)
            }
        case "idle": try cluster.idle(sizes: idleSizes ?? (quick ? [10] : [10, 30]), seconds: quick ? 3 : 10)
        case "receive": try cluster.receive(flood: quick ? 100_000 : 200_000, floodRounds: quick ? 2 : 3, pacedSeconds: quick ? 3 : 10)
        case "sim": SimScenario.run(report, sizes: simSizes ?? (quick ? [200] : [30, 1_000]), crashes: quick ? 3 : 10, warm: simWarm)
        case "sim-cost": SimCostScenario.run(report, sizes: simSizes ?? (quick ? [200] : [1_000]))
        case "sim-election": SimElectionScenario.run(report, sizes: simSizes ?? (quick ? [200] : [1_000]), rounds: quick ? 3 : 7)
        case "sim-loss": SimLossScenario.run(report, n: 30, rounds: quick ? 3 : 10, ids: quick ? 10_000 : 50_000)
        case "attack": AttackScenario.run(report, quick: quick)
        case "handlers": try HandlerScenario.run(report, rounds: quick ? 10 : 30)
        case "uevent":
            try cluster.userEvents(n: quick ? 10 : 30, rounds: quick ? 10 : 50, loss: 0)
            try cluster.userEvents(n: quick ? 10 : 30, rounds: quick ? 10 : 50, loss: 0.1)
        case "tags":
            try cluster.tags(n: quick ? 10 : 30, rounds: quick ? 5 : 30, loss: 0)
            try cluster.tags(n: quick ? 10 : 30, rounds: quick ? 5 : 20, loss: 0.1)
        default: break
        }
    } catch {
        System.write("scenario \(scenario) failed: \(error)\n", to: 2)
        report.summary(scenario, "scenario", .failing("stopped by an error: \(error)"), "")
    }
    report.closePending()
}
System.write("\(report.markdown)\n\ntotal wall time: \(Report.format(Double(System.now().nanos - started) / 1e9)) s\n", to: 1)
if let jsonPath {
    do { try System.writeAtomically(jsonPath, Array(report.json.serialized(pretty: true).utf8)) } catch { System.write("cannot write \(jsonPath): \(error)\n", to: 2) }
}
