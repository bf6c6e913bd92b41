public import Logging
public import ServiceLifecycle

/// Owns the set of instances: creates one per model replica, runs them, hands out their ports, and stops them
/// all on graceful shutdown. A `Service`: its `run()` returns once every instance's process is gone.
public actor Supervisor: Service {
    public nonisolated let config: FleetConfig
    public nonisolated let executable: String
    private let client: UpstreamClient
    private let logger: Logger
    private let observe: @Sendable (InstanceEvent) -> Void
    private var ports: PortAllocator
    private var instances: [Instance] = []

    /// - Parameters:
    ///   - executable: the llama-server to run (see `LlamaServerLocator`).
    ///   - observe: called on every instance state change, on the instance's actor; must not block.
    public init(config: FleetConfig, executable: String, client: UpstreamClient, logger: Logger,
                observe: @escaping @Sendable (InstanceEvent) -> Void = { _ in }) {
        self.config = config
        self.executable = executable
        self.client = client
        self.logger = logger
        self.observe = observe
        self.ports = PortAllocator(range: config.portRange)
    }

    public func run() async throws {
        instances = makeInstances()
        let running = instances
        logger.info("starting fleet", metadata: ["models": "\(config.models.count)", "instances": "\(running.count)",
                                                  "llamaServer": "\(executable)"])
        await withTaskGroup(of: Void.self) { group in
            for instance in running {
                group.addTask { await instance.run() }
            }
            // Returns on graceful shutdown, or throws when this task is cancelled: both mean stop everything.
            try? await gracefulShutdown()
            logger.info("stopping every instance")
            for instance in running {
                await instance.stop()
            }
            await group.waitForAll()
        }
        logger.info("every instance stopped")
    }

    /// Every instance's status, sorted by model and replica.
    public func statuses() async -> [InstanceStatus] {
        var result: [InstanceStatus] = []
        for instance in instances {
            result.append(await instance.status())
        }
        return result
    }

    private func makeInstances() -> [Instance] {
        let logDirectory = "\(config.stateDirectory)/logs"
        let lease = Instance.PortLease(
            take: { [weak self] in
                guard let self else { throw CancellationError() }
                return try await self.takePort()
            },
            give: { [weak self] port in await self?.givePort(port) }
        )
        return config.models.flatMap { model in
            (0..<model.replicas).map { replica in
                Instance(id: InstanceID(model: model.name, replica: replica),
                         settings: InstanceSettings(model: model, executable: executable, healthCheck: config.healthCheck,
                                                    restart: config.restart, stopTimeout: config.stopTimeout,
                                                    logDirectory: logDirectory),
                         client: client, ports: lease, logger: logger, observe: observe)
            }
        }
    }

    private func takePort() throws -> Int {
        try ports.allocate()
    }

    private func givePort(_ port: Int) {
        ports.release(port)
    }
}
