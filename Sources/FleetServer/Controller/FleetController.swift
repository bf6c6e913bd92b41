import Foundation
public import Logging
import Hummingbird
import ServiceLifecycle
import Glibc
import UnixSignals
public import FleetConfig
public import FleetCore
import FleetUpstream
import FleetRouting
import FleetSupervision

/// The whole controller: upstream client, model router, supervisor and HTTP server (gateway, status, control)
/// as services in one `ServiceGroup`, shut down gracefully in reverse order (stop serving, stop instances, stop
/// routing, stop the client) on SIGINT, SIGTERM or `POST /control/shutdown`.
public struct FleetController: Sendable {
    public let config: FleetConfig
    public let executable: String
    public let logger: Logger
    private let observe: @Sendable (InstanceEvent) -> Void
    private let signals: [UnixSignal]
    private let allowUnauthenticated: Bool

    public static let version = "0.1.0"

    /// - Parameters:
    ///   - handleSignals: install SIGINT/SIGTERM handlers (the CLI does; tests in-process do not).
    ///   - allowUnauthenticated: listen beyond loopback without API keys (`fleet up --allow-unauthenticated`).
    public init(config: FleetConfig, executable: String, logger: Logger, handleSignals: Bool = true,
                allowUnauthenticated: Bool = false,
                observe: @escaping @Sendable (InstanceEvent) -> Void = { _ in }) {
        self.allowUnauthenticated = allowUnauthenticated
        self.config = config
        self.executable = executable
        self.logger = logger
        self.observe = observe
        self.signals = handleSignals ? [.sigterm, .sigint] : []
    }

    public struct ListenAddressInUse: Error, CustomStringConvertible {
        public var address: ListenAddress
        public var anotherFleet: Bool
        public var description: String {
            anotherFleet
                ? "a fleet controller already runs at \(address.url): see it with `fleet status --url \(address.url)`, stop it with `fleet down --url \(address.url)`, or set another \"listen\" in fleet.json"
                : "\(address) is in use by another program: set another \"listen\" in fleet.json (e.g. \"127.0.0.1:8091\")"
        }
    }

    /// The llama-server is older than fleet supports.
    public struct UnsupportedLlamaServer: Error, CustomStringConvertible {
        public var description: String
    }

    /// Runs until shut down. `onReady` is called once the HTTP server listens (instances may still be loading).
    /// - Throws: `UnsupportedLlamaServer` when the llama-server is older than fleet supports, `ListenAddressInUse`
    ///   before starting anything when the listen address is taken; errors of the
    ///   HTTP server.
    public func run(onListening: @escaping @Sendable () async -> Void = {}) async throws {
        let keys = APIKeys(config.keysInForce())
        try config.checkExposure(keys: keys.keys, allowUnauthenticated: allowUnauthenticated)
        let llamaServerVersion = await LlamaServerVersion.of(executable: executable)
        if let refusal = LlamaServerVersion.refusal(llamaServerVersion, executable: executable) {
            throw UnsupportedLlamaServer(description: refusal)
        }
        try await checkListenAddress()
        try FileManager.default.createDirectory(atPath: config.stateDirectory, withIntermediateDirectories: true)

        let client = UpstreamClient()
        let router = ModelRouter(config: config, client: client, logger: logger)
        let metrics = FleetMetrics()
        let observe = self.observe
        let supervisor = Supervisor(config: config, executable: executable, client: client, logger: logger,
                                    drain: { id in await router.drain(id) },
                                    drainModel: { name in await router.drainRemoved(name) },
                                    observe: { event in
                                        router.instanceChanged(event)
                                        metrics.instanceChanged(event)
                                        observe(event)
                                    })
        let (shutdownRequests, shutdownRequester) = AsyncStream<Void>.makeStream()
        let info = ControllerInfo(version: Self.version, pid: getpid(), listen: config.listen.description,
                                  url: config.listen.url, config: config.source, startedAt: Date(),
                                  stateDirectory: config.stateDirectory, llamaServer: executable,
                                  llamaServerVersion: llamaServerVersion)
        let http = Router(context: FleetRequestContext.self)
        // First, so they guard every route registered after them: web pages are refused before keys are looked at.
        let allowedHosts = AllowedHosts(configured: config.allowedHosts, listenHost: config.listen.host)
        let browserGuard = BrowserGuard<FleetRequestContext>(allowedHosts: allowedHosts)
        let keyCheck = APIKeyMiddleware<FleetRequestContext>(keys: keys)
        http.add(middleware: browserGuard)
        http.add(middleware: keyCheck)
        let connections = ConnectionRegistry(maxConnections: config.gateway.maxConnections)
        let limits = ConnectionLimits(config.gateway)
        let reloader = FileManager.default.fileExists(atPath: config.source)
            ? Reloader(source: config.source, running: config, supervisor: supervisor, router: router, keys: keys) : nil
        ControllerRoutes(supervisor: supervisor, router: router, controller: info, reloader: reloader,
                         connections: connections, metrics: metrics,
                         requestShutdown: { shutdownRequester.yield() })
            .register(on: http)
        let gatewayRoutes = GatewayRoutes(router: router, client: client, config: config, metrics: metrics,
                                          connections: connections)
        gatewayRoutes.register(on: http)
        // The same routes behind the same checks, answered from the channel pipeline (GatewayChannelHandler);
        // `http` keeps them too, for a request that arrives while Hummingbird still owes an answer.
        let gateway = GatewayServing(browserGuard: browserGuard, keyCheck: keyCheck, routes: gatewayRoutes,
                                     maxBodySize: config.gateway.maxBodySize)
        LogRoutes(supervisor: supervisor).register(on: http)
        DashboardRoutes().register(on: http)
        let app = Application(
            router: http,
            server: .http1(configuration: .init(additionalChannelHandlers: [
                ConnectionGuard(limits: limits, registry: connections),
            ]), gateway: gateway),
            configuration: .init(address: .hostname(config.listen.host, port: config.listen.port), serverName: "fleet",
                                 backlog: 1024),
            onServerRunning: { _ in await onListening() },
            logger: logger)

        var groupConfiguration = ServiceGroupConfiguration(
            services: [.init(service: client), .init(service: router), .init(service: supervisor), .init(service: app)],
            gracefulShutdownSignals: signals,
            logger: logger)
        // A graceful shutdown lets the answers in flight finish (the server stops accepting first), within
        // drainTimeout; then every instance stops within stopTimeout. Past that, what is left is cancelled (and a
        // stream still running ends with an error event, never as if complete).
        groupConfiguration.maximumGracefulShutdownDuration = config.drainTimeout + config.stopTimeout + .seconds(5)
        let group = ServiceGroup(configuration: groupConfiguration)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            tasks.addTask {
                // Stays until the group has finished (a task of this group that ends stops the controller at once,
                // cancelling the answers a graceful shutdown lets finish): a second request changes nothing.
                var requested = false
                for await _ in shutdownRequests where !requested {
                    requested = true
                    logger.info("shutdown requested over the control API")
                    // Let the 202 reach the caller before the server stops accepting and closes connections.
                    try? await Task.sleep(for: .milliseconds(100))
                    await group.triggerGracefulShutdown()
                }
            }
            router.onWake { name in Task { await supervisor.wake(model: name) } }
            await supervisor.setUsage { name in await router.pool(for: name)?.usage() }
            tasks.addTask { await IdleWatcher(router: router, supervisor: supervisor).run() }
            if let reloader, config.watch {
                tasks.addTask {
                    await reloader.watch { result in
                        if result.errors.isEmpty {
                            logger.notice("fleet.json changed; reloaded", metadata: ["result": "\(result.applied.map { "\($0)" } ?? "")"])
                        } else {
                            logger.error("fleet.json changed but is invalid; nothing changed", metadata: ["errors": "\(result.errors)"])
                        }
                    }
                }
            }
            if let reloader, !signals.isEmpty {
                // SIGHUP reloads fleet.json, as daemons do.
                tasks.addTask {
                    for await _ in await UnixSignalsSequence(trapping: .sighup) {
                        let result = await reloader.reload()
                        if result.errors.isEmpty {
                            logger.notice("reloaded on SIGHUP", metadata: ["result": "\(result.applied.map { "\($0)" } ?? "")"])
                        } else {
                            logger.error("fleet.json is invalid; nothing changed", metadata: ["errors": "\(result.errors)"])
                        }
                    }
                }
            }
            try await tasks.next()
            tasks.cancelAll()
        }
    }

    /// Refuses to start when the listen port is taken, before any instance is spawned; says whether the
    /// taker is another fleet.
    private func checkListenAddress() async throws {
        guard !PortAllocator.isFree(config.listen.port) else { return }
        let response = try? await UpstreamClient.with { client in
            try await client.fetch(UpstreamRequest(url: config.listen.url + "/status", connectTimeout: .seconds(1),
                                                   totalTimeout: .seconds(2)))
        }
        let isFleet = response.map { $0.status == 200 && $0.bodyText.contains("\"controller\"") } ?? false
        throw ListenAddressInUse(address: config.listen, anotherFleet: isFleet)
    }
}
