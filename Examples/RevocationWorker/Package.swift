// swift-tools-version: 6.0
import PackageDescription

// A revocation-aware worker: works through task ids and skips those revoked by `starling revoke`.
let package = Package(
    name: "RevocationWorker",
    dependencies: [.package(name: "Starling", path: "../..")],
    targets: [
        .executableTarget(name: "RevocationWorker", dependencies: [.product(name: "Starling", package: "Starling")])
    ],
    swiftLanguageModes: [.v6]
)
