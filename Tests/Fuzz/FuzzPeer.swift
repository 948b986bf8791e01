// libFuzzer target for the Peer core as a state machine (issue 14: "a stateful fuzz target").
// The interpreter lives in Tests/StarlingCoreTests/PeerFuzzInterpreter*.swift so that `swift test`
// replays the same inputs (PeerFuzzCorpusTests); here it is compiled with the core as one module
// (more in Tests/Fuzz/README.md):
//
//   swiftc -sanitize=fuzzer,address -package-name starling -parse-as-library -O -wmo \
//       $(find Sources/StarlingCore -name '*.swift') Tests/StarlingCoreTests/PeerFuzzInterpreter*.swift \
//       Tests/Fuzz/FuzzPeer.swift -o .build/fuzz-peer
//   .build/fuzz-peer /tmp/peer-corpus -max_total_time=600       # fuzz (a copy of peer-corpus*/)
//   .build/fuzz-peer Tests/Fuzz/peer-corpus*/* Tests/Fuzz/peer-regressions/* -runs=0   # replay (CI)
//
// A broken invariant is a crash whose message starts with the invariant's name (clock_decreased,
// encode_drop, unbounded_members, ...). Keep each new crash as a named file in
// Tests/Fuzz/peer-regressions so that `swift test` replays it. While a known failure is unfixed,
// STARLING_FUZZ_IGNORE=clock_decreased,encode_drop (names, comma-separated) hunts for others;
// SWIFT_BACKTRACE=enable=no keeps Swift's backtracer from tripping over AddressSanitizer.

import Glibc

/// Invariants not to report, from the environment (read once).
private let ignoredInvariants: Set<String> = {
    guard let value = getenv("STARLING_FUZZ_IGNORE") else { return [] }
    return Set(String(cString: value).split(separator: ",").map(String.init))
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPeer(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let bytes = [UInt8](UnsafeRawBufferPointer(start: start, count: count))
    if let violation = PeerFuzzInterpreter.run(bytes, ignoring: ignoredInvariants).violation {
        fatalError("invariant \(violation)")
    }
    return 0
}
