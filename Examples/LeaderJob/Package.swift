// swift-tools-version: 6.0
import PackageDescription

// A leader-only job: run three; only the leader of topic "jobs" prints its tick.
let package = Package(
    name: "LeaderJob",
    dependencies: [.package(name: "Starling", path: "../..")],
    targets: [
        .executableTarget(name: "LeaderJob", dependencies: [.product(name: "Starling", package: "Starling")])
    ],
    swiftLanguageModes: [.v6]
)
