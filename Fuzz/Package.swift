// swift-tools-version: 6.1
import PackageDescription

// libFuzzer targets for Roster's parsers of outside text. Built apart from the main
// package (`scripts/fuzz` builds with `--sanitize=fuzzer --sanitize=address`), so normal
// builds and CI never compile them. Each target checks properties, not only "no crash".
let package = Package(
    name: "RosterFuzz",
    dependencies: [.package(name: "Roster", path: "..")],
    targets: [
        .executableTarget(name: "FuzzConfiguration", dependencies: [.product(name: "RosterConfig", package: "Roster")]),
        .executableTarget(name: "FuzzDistinguishedName", dependencies: [
            .product(name: "RosterConfig", package: "Roster"), .product(name: "Sync", package: "Roster"),
        ]),
        .executableTarget(name: "FuzzFilter", dependencies: [.product(name: "RosterConfig", package: "Roster")]),
        .executableTarget(name: "FuzzDirectoryTime", dependencies: [.product(name: "Sync", package: "Roster")]),
    ]
)
