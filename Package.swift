// swift-tools-version: 6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "fleet",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "fleet", targets: ["fleet"]),
        .executable(name: "fake-llama-server", targets: ["fake-llama-server"]),
        .executable(name: "fleet-microbench", targets: ["fleet-microbench"]),
        // The engine, in layers (each depends only on those listed before it): FleetCore, FleetConfig,
        // FleetUpstream, FleetSupervision and FleetRouting, FleetServer; FleetClient talks to a running one.
        .library(name: "FleetKit", targets: ["FleetCore", "FleetConfig", "FleetUpstream", "FleetSupervision",
                                             "FleetRouting", "FleetServer", "FleetClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.3.0"),
        // Tests only: reads deploy/kubernetes/*.yaml to check the manifests offline.
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // The only C: libcurl, plus non-variadic wrappers for its variadic setopt/getinfo calls.
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        // Ids, states, events, the status and control documents, formatting, process helpers: no dependencies.
        .target(name: "FleetCore", swiftSettings: swiftSettings),
        // fleet.json: read, validate, defaults from the environment, the GGUF files it names, the keys.
        .target(name: "FleetConfig", dependencies: ["FleetCore"], swiftSettings: swiftSettings),
        // The one HTTP client (libcurl's multi handle on one thread): the engine's only importer of CCurl (the other is
        // fleet-microbench's floor proxy).
        .target(
            name: "FleetUpstream",
            dependencies: [
                "FleetCore", "CCurl",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // llama-server processes: spawn, probe, restart, hot swap, reload, memory.
        .target(
            name: "FleetSupervision",
            dependencies: [
                "FleetCore", "FleetConfig", "FleetUpstream",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: swiftSettings
        ),
        // Which instance takes a request: pools, queues, leases, policies, endpoints.
        .target(
            name: "FleetRouting",
            dependencies: [
                "FleetCore", "FleetConfig", "FleetUpstream",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: swiftSettings
        ),
        // The controller: HTTP (gateway, control, status, dashboard, metrics), security, connections, and the
        // service group that runs it all.
        .target(
            name: "FleetServer",
            dependencies: [
                "FleetCore", "FleetConfig", "FleetUpstream", "FleetSupervision", "FleetRouting",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            // The dashboard's page (HTML, CSS and JavaScript in one file), served as it is.
            resources: [.copy("Resources/dashboard.html")],
            swiftSettings: swiftSettings
        ),
        // What the CLI uses to talk to a running controller (and to start one in the background).
        .target(
            name: "FleetClient",
            dependencies: ["FleetCore", "FleetConfig", "FleetUpstream", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "fleet",
            dependencies: [
                "FleetCore", "FleetConfig", "FleetSupervision", "FleetServer", "FleetClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "fake-llama-server",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Microbenchmarks of per-request work too small to see under load (scripts/bench.sh runs it in release).
        // `fleet-microbench proxy PORT URL...` is the bench's floor: swift-nio's HTTP/1 server and one libcurl thread.
        .executableTarget(
            name: "fleet-microbench",
            dependencies: ["FleetCore", "FleetRouting", "CCurl", .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio")],
            swiftSettings: swiftSettings),
        // Helpers both test targets share: where the built executables are, free ports, polling, processes.
        .target(
            name: "FleetTestSupport",
            dependencies: ["FleetCore", "FleetConfig", "FleetUpstream", "FleetSupervision",
                           .product(name: "Logging", package: "swift-log")],
            path: "Tests/FleetTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FleetKitTests",
            dependencies: [
                "FleetCore", "FleetConfig", "FleetUpstream", "FleetSupervision", "FleetRouting", "FleetServer",
                "FleetClient", "FleetTestSupport", .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["FleetCore", "FleetConfig", "FleetUpstream", "FleetSupervision", "FleetServer", "FleetClient",
                           "FleetTestSupport"],
            exclude: ["openai_client_check.py", "openai_load.py", "clients_check.py"],
            swiftSettings: swiftSettings
        ),
    ]
)
