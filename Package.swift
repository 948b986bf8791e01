// swift-tools-version: 6.0
import PackageDescription

// The agent binary links the Swift runtime statically so that an idle agent stays small
// (see Benchmarks/README.md, "idle"). Only the executables that run as long-lived peers get it.
// Sanitizer and fuzzer builds cannot link statically: STARLING_DYNAMIC_LINK=1 turns it off.
let staticStdlib: [LinkerSetting] =
    Context.environment["STARLING_DYNAMIC_LINK"] == "1" ? [] : [.unsafeFlags(["-static-executable"])]

// STARLING_OPTIMIZE_CORE=1 compiles the core and the simulator optimised in debug builds too:
// `swift test` spends most of its time in simulations, which then run about ten times faster
// (the tests still import them @testable). CI sets it. Opt-in, because SwiftPM refuses unsafe
// flags in any target of a package that another one depends on by version.
let optimizedInTests: [SwiftSetting] =
    Context.environment["STARLING_OPTIMIZE_CORE"] == "1" ? [.unsafeFlags(["-O"], .when(configuration: .debug))] : []

let package = Package(
    name: "Starling",
    products: [
        .library(name: "Starling", targets: ["Starling"]),
        .library(name: "StarlingCore", targets: ["StarlingCore"]),
        .library(name: "StarlingSimulator", targets: ["StarlingSimulator"]),
        .executable(name: "starling", targets: ["StarlingCLI"]),
        .executable(name: "starling-bench", targets: ["StarlingBench"]),
        .executable(name: "starling-conformance", targets: ["StarlingConformance"]),
    ],
    targets: [
        // Sans-IO protocol core: codec, clock, revoked set, membership, mingle, election, control.
        .target(name: "StarlingCore", swiftSettings: optimizedInTests),
        // POSIX shell: every syscall, sockets, the event loop.
        .target(name: "StarlingPOSIX", dependencies: ["StarlingCore"]),
        // The embeddable agent: core + shell.
        .target(name: "Starling", dependencies: ["StarlingCore", "StarlingPOSIX"]),
        // What tests, `starling demo` and the benchmark share: loopback agent processes.
        .target(name: "StarlingTestSupport", dependencies: ["Starling"]),
        // Virtual-time, lossy in-memory network driving the same core.
        .target(name: "StarlingSimulator", dependencies: ["StarlingCore"], swiftSettings: optimizedInTests),
        .executableTarget(name: "StarlingCLI", dependencies: ["Starling", "StarlingTestSupport"], linkerSettings: staticStdlib),
        .executableTarget(
            name: "StarlingConformance", dependencies: ["Starling"], linkerSettings: staticStdlib),
        .executableTarget(
            name: "StarlingBench", dependencies: ["Starling", "StarlingSimulator", "StarlingTestSupport"],
            path: "Benchmarks/StarlingBench"),
        .testTarget(name: "StarlingCoreTests", dependencies: ["StarlingCore"], exclude: ["Vectors"]),
        .testTarget(name: "StarlingSimulatorTests", dependencies: ["StarlingSimulator"]),
        .testTarget(name: "StarlingAgentTests", dependencies: ["Starling", "StarlingTestSupport"]),
        // The embedding API as a program sees it: `import Starling` and nothing else.
        .testTarget(name: "StarlingAPITests", dependencies: ["Starling"]),
    ],
    swiftLanguageModes: [.v6]
)
