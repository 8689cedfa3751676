// swift-tools-version:6.2
import PackageDescription

/// One set of compiler settings for every target, so the whole package is held to the
/// same Swift 6 strictness.
let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "lockvault",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "lockvault", targets: ["lockvault"]),
        .library(name: "LockvaultCore", targets: ["LockvaultCore"]),
        .library(name: "PostgresClient", targets: ["PostgresClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
        // HTTP: the webhook sink's client and the /metrics endpoint. Both are swift-nio, so a
        // static release binary needs no libcurl (FoundationNetworking would drag it in).
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.65.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.21.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.0.0"),
        // Child processes (the command alert sink) with a clean signal mask and default dispositions.
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.0"),
    ],
    targets: [
        // C libraries, through pkg-config; apt names the Debian packages that provide them.
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        .systemLibrary(
            name: "CSystemd",
            pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]
        ),

        // Thin adapters over the C libraries.
        .target(
            name: "PostgresClient",
            dependencies: ["CLibPQ"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SystemdSupport",
            dependencies: [
                "CSystemd",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // The domain: pure values and functions, no I/O.
        .target(
            name: "LockvaultCore",
            swiftSettings: swiftSettings
        ),

        // I/O that applies the domain to a real cluster and vault: snapshot, vault writes,
        // migrations, resolve actions.
        .target(
            name: "LockvaultEngine",
            dependencies: [
                "LockvaultCore",
                "PostgresClient",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // The long-running service: config, schedule, lifecycle, systemd integration.
        .target(
            name: "LockvaultDaemon",
            dependencies: [
                "LockvaultEngine",
                "SystemdSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),

        .executableTarget(
            name: "lockvault",
            dependencies: [
                "LockvaultCore",
                "LockvaultEngine",
                "LockvaultDaemon",
                "PostgresClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),

        // Benchmarks (bench/run.sh): not part of the tests.
        .executableTarget(
            name: "lockvault-bench",
            dependencies: ["PostgresClient", "LockvaultCore", "LockvaultEngine", .product(name: "Logging", package: "swift-log")],
            path: "bench/Sources/lockvault-bench",
            swiftSettings: swiftSettings
        ),

        // The bench's statistics and report arithmetic on known inputs: no server needed.
        .testTarget(
            name: "LockvaultBenchTests",
            dependencies: ["lockvault-bench"],
            path: "bench/Tests/LockvaultBenchTests",
            swiftSettings: swiftSettings
        ),

        // What more than one test target uses: a stand-in for systemd's notification socket, and
        // the one way tests start a program (swift-subprocess).
        .target(
            name: "TestSupport",
            dependencies: [.product(name: "Subprocess", package: "swift-subprocess")],
            path: "Tests/TestSupport",
            swiftSettings: swiftSettings
        ),

        // Unit tests: no server needed.
        .testTarget(
            name: "LockvaultCoreTests",
            dependencies: ["LockvaultCore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PostgresClientTests",
            dependencies: ["PostgresClient"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LockvaultDaemonTests",
            dependencies: ["LockvaultDaemon", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SystemdSupportTests",
            dependencies: ["SystemdSupport", "TestSupport"],
            swiftSettings: swiftSettings
        ),

        // Live-database tests: need the private cluster started by scripts/pg-cluster.sh. HTTP
        // (a webhook receiver, GET /metrics) through the libraries the daemon uses.
        .testTarget(
            name: "LiveDatabaseTests",
            dependencies: [
                "LockvaultCore",
                "LockvaultEngine",
                "LockvaultDaemon",
                "PostgresClient",
                "TestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
