// Writes the seed corpus of the stateful Peer fuzz target (Tests/Fuzz/peer-corpus): for every
// message type of version 2, with one plain peer and with two keyed peers, the first input (from a fixed
// pseudo-random sequence) whose first step delivers a datagram of that type that the peer
// accepts. Run once:
//
//   swiftc -package-name starling -parse-as-library -O $(find Sources/StarlingCore -name '*.swift') \
//       Tests/StarlingCoreTests/PeerFuzzInterpreter*.swift Tests/Fuzz/MakePeerSeeds.swift -o .build/make-peer-seeds
//   .build/make-peer-seeds Tests/Fuzz/peer-corpus

import Foundation

@main
enum MakePeerSeeds {
    static func main() throws {
        let folder = URL(fileURLWithPath: CommandLine.arguments.dropFirst().first ?? "Tests/Fuzz/peer-corpus")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var rng = SplitMix64(seed: 14)
        // Setup bytes: flags, quorum, then per peer a name, a random seed and "clock 0".
        let setups: [(String, [UInt8])] = [("plain", [0x00, 0, 0, 1, 1]), ("keyed-pair", [0x07, 2, 0, 1, 1, 1, 2, 1])]
        for (label, setup) in setups {
            // A type that holds several slots (PING took HEARTBEAT's and PROBE's) is seeded once, at its first.
            for (index, type) in PeerFuzzInterpreter.messageTypes.enumerated()
            where PeerFuzzInterpreter.messageTypes.firstIndex(of: type) == index {
                // Two peers spend one byte picking the receiver; op 3 delivers a structured datagram.
                let prefix = setup + (setup[0] & 1 == 1 ? [0] : []) + [3, UInt8(index)]
                var found = false
                for _ in 0..<200_000 where !found {
                    let tail = (0..<48).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                    let report = PeerFuzzInterpreter.run(prefix + tail)
                    guard report.violation == nil, report.accepted.contains(where: { $0.step == 1 && $0.type == type }) else { continue }
                    try Data(prefix + tail).write(to: folder.appendingPathComponent("seed-\(label)-\(type.name)"))
                    found = true
                }
                print(found ? "seed-\(label)-\(type.name)" : "NO SEED for \(label) \(type.name)")
            }
        }
    }
}
