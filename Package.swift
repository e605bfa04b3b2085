// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "Shoal",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "shoal", targets: ["shoal"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // TLS on a front-end's public port (BoringSSL inside; see docs/manifest.md, `tls`).
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // Debian's libpvm3 and libyaml, never vendored.
        .systemLibrary(name: "CPVM", providers: [.apt(["pvm-dev"])]),
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),

        // The pure core: models, levels, policy, lease state machine. No I/O, imports nothing of the project.
        .target(name: "ShoalCore", exclude: ["README.md"]),
        // NIOSSL: a manifest's `tls` files are loaded to check them, as the front-end will.
        .target(name: "ShoalManifest", dependencies: ["ShoalCore", "CYAML", .product(name: "NIOSSL", package: "swift-nio-ssl")]),
        // Child processes started with a clean signal mask; C string helpers.
        .target(name: "ShoalProcess"),
        .target(name: "PVM", dependencies: [
            "CPVM", "ShoalProcess",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The NIO HTTP/1.1 relay used by the front-end's service manager and by the worker.
        .target(name: "ShoalProxy", dependencies: [
            "ShoalCore",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // A service instance: the manifest's binary on a free port, ready when healthy.
        .target(name: "ShoalInstance", dependencies: [
            "ShoalCore", "ShoalProcess",
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The PVM messages between the broker and its workers (the paper's work-processor protocol).
        .target(name: "ShoalWorkerProtocol", dependencies: ["PVM"]),
        // The paper's work processor: the service instance on a back-end, behind a draining relay.
        .target(name: "ShoalWorker", dependencies: [
            "ShoalCore", "ShoalInstance", "ShoalProxy", "PVM", "ShoalWorkerProtocol", "ShoalAPI", "ShoalClient",
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The front-end agent: service manager (reverse proxy) and, with the broker, load manager.
        .target(name: "ShoalAgent", dependencies: [
            "ShoalCore", "ShoalInstance", "ShoalProxy", "ShoalAPI", "ShoalClient",
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        // The broker API's bodies, its token and the state directory: what the broker, the
        // front-ends and the CLI share.
        .target(name: "ShoalAPI", dependencies: ["ShoalCore"]),
        // A small NIO HTTP client of the broker's API, for the front-ends and the CLI.
        .target(name: "ShoalClient", dependencies: [
            "ShoalAPI", "ShoalCore",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),
        // The CLI's tables and sentences for leases, the pool, services and events.
        .target(name: "ShoalRendering", dependencies: ["ShoalAPI", "ShoalCore"]),
        // `--log-format json`: one JSON object per log line.
        .target(name: "ShoalLogging", dependencies: [.product(name: "Logging", package: "swift-log")]),
        // The broker: pool, lease table and event log (SQLite through GRDB), arbitration, the
        // PVM launcher, and the HTTP API (Hummingbird).
        .target(name: "ShoalBroker", dependencies: [
            "ShoalCore", "ShoalAPI", "ShoalClient", "ShoalManifest", "PVM", "ShoalWorkerProtocol",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdTLS", package: "hummingbird"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ], resources: [.embedInCode("Resources/status.html")]),
        // Test hosts, managed processes, load, and a whole local cluster (demo, benchmarks, tests).
        .target(name: "ShoalTesting", dependencies: [
            "PVM", "ShoalProcess", "ShoalAPI", "ShoalClient", .product(name: "Logging", package: "swift-log"),
            // The WebSocket client of the tests (a real handshake and framing, over TLS too).
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOWebSocket", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),

        .executableTarget(name: "shoal", dependencies: [
            "ShoalCore", "ShoalManifest", "PVM", "ShoalAgent", "ShoalWorker", "ShoalAPI", "ShoalClient", "ShoalRendering",
            "ShoalLogging", "ShoalBroker", "ShoalInstance", "ShoalProcess",
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),
        // The paper's sample web server: document size, delay and CPU work per request. Knows nothing of Shoal.
        .executableTarget(name: "shoal-webserver", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // `make demo`: a whole cluster on this machine under a load ramp, then a summary; leaves nothing running.
        .executableTarget(name: "shoal-demo", dependencies: [
            "ShoalAPI", "ShoalClient", "ShoalCore", "ShoalTesting", "PVM",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // A tiny PVM task used by the integration tests: enrols, echoes every message to its sender.
        .executableTarget(name: "shoal-pvm-echo", dependencies: ["PVM", "ShoalTesting", .product(name: "Logging", package: "swift-log")]),
        // The broker benchmark: lease grant latency and operations per second, and the reaction to a load step.
        .executableTarget(name: "shoal-bench-broker", dependencies: [
            "ShoalBroker", "ShoalAPI", "ShoalClient", "ShoalCore", "ShoalTesting", "PVM",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // The paper's three experiments with httperf, beside direct access and nginx (docs/benchmarks.md).
        .executableTarget(name: "shoal-bench-paper", dependencies: [
            "ShoalAPI", "ShoalClient", "ShoalCore", "ShoalInstance", "ShoalTesting", "PVM",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        .testTarget(name: "ShoalCoreTests", dependencies: ["ShoalCore"]),
        // The front-end's load manager: its reconciler's decisions, driven by hand with a manual clock.
        .testTarget(name: "ShoalAgentTests", dependencies: ["ShoalAgent", "ShoalCore"]),
        .testTarget(name: "ShoalAPITests", dependencies: [
            "ShoalAPI", "ShoalClient", "ShoalRendering", "ShoalLogging", "ShoalCore", "ShoalTesting",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        .testTarget(name: "ShoalBrokerTests", dependencies: [
            "ShoalBroker", "ShoalCore", "ShoalAPI", "ShoalClient", "ShoalTesting",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // A real broker, real pvmd on namespace hosts, real front-ends and workers, under load.
        .testTarget(name: "ShoalClusterTests", dependencies: [
            "ShoalAPI", "ShoalBroker", "ShoalClient", "ShoalCore", "ShoalTesting", "PVM",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOWebSocket", package: "swift-nio"),
        ]),
        .testTarget(name: "ShoalManifestTests", dependencies: ["ShoalManifest", "ShoalCore", "ShoalTesting"]),
        .testTarget(name: "PVMTests", dependencies: ["PVM", "ShoalTesting", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "ShoalProxyTests", dependencies: [
            "ShoalProxy", "ShoalCore", "ShoalTesting", "ShoalWorker", "ShoalWorkerProtocol", "PVM", "ShoalInstance",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "NIOWebSocket", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
    ]
)

// Strict settings on every target, in one place.
// Targets that use Glibc's socket structs next to SwiftNIO go without MemberImportVisibility:
// glibc's headers are not modular, so `sockaddr_in` is attributed to whichever module included
// them first (often NIO's CNIOLinux), and the check then fails or passes by build order.
let socketLevelTargets: Set = ["ShoalInstance", "ShoalWorker", "ShoalProxyTests"]
for target in package.targets where target.type != .system {
    target.swiftSettings = (target.swiftSettings ?? []) + [.enableUpcomingFeature("ExistentialAny")]
        + (socketLevelTargets.contains(target.name) ? [] : [.enableUpcomingFeature("MemberImportVisibility")])
}
