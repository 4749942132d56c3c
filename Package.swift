// swift-tools-version: 6.1
import PackageDescription

/// Checks every Roster target opts into: explicit `any`, and imports that say what they use.
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "Roster",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "roster", targets: ["roster"]),
        .library(name: "LDAPKit", targets: ["LDAPKit"]),
        .library(name: "AccessModel", targets: ["AccessModel"]),
        .library(name: "Mirror", targets: ["Mirror"]),
        .library(name: "RosterConfig", targets: ["RosterConfig"]),
        .library(name: "Sync", targets: ["Sync"]),
        .library(name: "RosterService", targets: ["RosterService"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-async-algorithms", from: "1.1.4"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // Already built for Hummingbird; named for the types RosterService uses directly
        // (HTTP field names, channels) and for RosterServiceTests' raw HTTP client.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        // Already built for HummingbirdTLS; named for the certificate and key types of HTTPS.
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.2"),
    ],
    targets: [
        // OpenLDAP's libldap/liblber, with a shim for what Swift cannot import.
        .systemLibrary(
            name: "CLDAP",
            pkgConfig: "ldap",
            providers: [.apt(["libldap-dev"])]
        ),
        // An async LDAP client: TLS, binds, paged and ranged search, RFC 4533 sync.
        .target(
            name: "LDAPKit",
            dependencies: [
                "CLDAP",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // The clinic access model and its rules: pure values, no I/O.
        .target(name: "AccessModel", swiftSettings: strictSettings),
        // roster.yaml: the configuration IT writes once, loaded and checked.
        .target(
            name: "RosterConfig",
            dependencies: [
                "AccessModel",
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strictSettings
        ),
        // SHA-256 compression with the x86 SHA extensions, for the audit log's hash chain.
        .target(name: "CSHA256"),
        // Giving freed memory back to the kernel (mimalloc's mi_collect and its decommit delay
        // when the process runs on it, else glibc's malloc_trim, which Swift's Glibc module does
        // not declare): the daemon hands back what a full reconcile freed.
        .target(name: "CHeap"),
        // The one SQLite setting Swift cannot reach (a variadic C call).
        .target(name: "CSQLiteOptions", linkerSettings: [.linkedLibrary("sqlite3")]),
        // The SQLite mirror the clinic application reads.
        .target(
            name: "Mirror",
            dependencies: [
                "AccessModel",
                "CSHA256",
                "CSQLiteOptions",
                .product(name: "GRDB", package: "GRDB.swift"),
                // SQLite's C API, for binding bulk rows without GRDB's per-value boxing.
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ],
            swiftSettings: strictSettings
        ),
        // Directory -> model: mapping, account states, plans and the reconcile.
        .target(
            name: "Sync",
            dependencies: [
                "LDAPKit", "AccessModel", "RosterConfig", "Mirror",
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
            ],
            swiftSettings: strictSettings
        ),
        // The daemon's services: shared state, HTTP (health, metrics, read API, events), systemd.
        .target(
            name: "RosterService",
            dependencies: [
                "CHeap",
                "Sync",
                "RosterConfig",
                "LDAPKit",
                "AccessModel",
                "Mirror",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "roster",
            dependencies: [
                "LDAPKit",
                "AccessModel",
                "Mirror",
                "RosterConfig",
                "Sync",
                "RosterService",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strictSettings,
            // mimalloc replaces glibc's malloc in the daemon and the command (ELF interposition:
            // libmimalloc comes before libc in the load order). See README, "The memory allocator".
            linkerSettings: [.linkedLibrary("mimalloc")]
        ),

        // A real slapd for tests: started on a free loopback port, loaded with slapadd.
        .target(
            name: "SlapdHarness",
            dependencies: ["LDAPKit", "AccessModel", "RosterConfig"],
            path: "Tests/Support/SlapdHarness",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "AccessModelTests",
            dependencies: [
                "AccessModel",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "MirrorTests",
            dependencies: [
                "Mirror",
                "AccessModel",
                // TemporaryFolders: the test mirrors are removed when the run ends.
                "SlapdHarness",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strictSettings
        ),
        // Bulk apply and read figures for the mirror: `swift run -c release MirrorBenchmark`.
        .executableTarget(
            name: "MirrorBenchmark",
            dependencies: ["Mirror", "AccessModel"],
            path: "Benchmarks/MirrorBenchmark",
            swiftSettings: strictSettings
        ),
        // What the benchmark programs share: options, figures and tables, a loopback HTTP and
        // event-stream client, `roster run` as a child process, clean-up on failure or Ctrl-C.
        .target(
            name: "BenchmarkSupport",
            dependencies: ["SlapdHarness", "Sync", "Mirror", "RosterConfig", "AccessModel"],
            path: "Benchmarks/BenchmarkSupport",
            swiftSettings: strictSettings
        ),
        // SyncBenchmark: sync, revocation (to commit and to the SSE event) and lookup figures
        // of roster sync and roster run against ldapsearch.
        .executableTarget(
            name: "SyncBenchmark",
            dependencies: [
                "BenchmarkSupport", "SlapdHarness", "Sync", "Mirror", "AccessModel",
                // libldap's synchronous calls, for acknowledgement times without a thread hop.
                "CLDAP",
                // PreciseTimestamp: reads the commit times roster run logs.
                "RosterService",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            path: "Benchmarks/SyncBenchmark",
            swiftSettings: strictSettings
        ),
        // swift run -c release Soak: a long run under changes and slapd restarts (not in CI).
        .executableTarget(
            name: "Soak",
            dependencies: ["BenchmarkSupport", "SlapdHarness", "Mirror", "AccessModel", "LDAPKit"],
            path: "Benchmarks/Soak",
            swiftSettings: strictSettings
        ),
        // swift run -c release ADBenchmark: Samba AD DC sync and revocation figures (needs root).
        .executableTarget(
            name: "ADBenchmark",
            dependencies: ["BenchmarkSupport", "SlapdHarness", "Sync", "Mirror", "RosterConfig", "LDAPKit", "AccessModel"],
            path: "Benchmarks/ADBenchmark",
            swiftSettings: strictSettings
        ),
        // swift run -c release DS389Benchmark: 389 Directory Server sync and revocation figures (needs root).
        .executableTarget(
            name: "DS389Benchmark",
            dependencies: ["BenchmarkSupport", "SlapdHarness", "Sync", "Mirror", "RosterConfig", "LDAPKit", "AccessModel"],
            path: "Benchmarks/DS389Benchmark",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "LDAPKitTests",
            dependencies: ["LDAPKit"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "RosterConfigTests",
            dependencies: ["RosterConfig", "AccessModel"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SyncTests",
            dependencies: ["Sync", "LDAPKit", "AccessModel", "RosterConfig", "Mirror"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "RosterServiceTests",
            dependencies: [
                "RosterService",
                // TemporaryFolders: the test mirrors are removed when the run ends.
                "SlapdHarness",
                "Mirror",
                "AccessModel",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "LDAPKit", "SlapdHarness", "Sync", "Mirror", "AccessModel", "RosterConfig", "RosterService",
                .product(name: "Logging", package: "swift-log"),
                // To damage the entry store on purpose (a stored copy unreadable or gone).
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strictSettings
        ),
    ]
)
