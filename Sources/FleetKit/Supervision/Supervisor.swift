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
    /// Every instance of the fleet, sorted by model and replica; created with the supervisor so status shows
    /// them from the start.
    private let instances: [Instance]

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
        let ports = PortPool(range: config.portRange)
        let lease = Instance.PortLease(take: { try await ports.take() }, give: { await ports.give($0) })
        self.instances = Self.makeInstances(config: config, executable: executable, client: client, lease: lease,
                                            logger: logger, observe: observe)
    }

    public func run() async throws {
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

    private static func makeInstances(config: FleetConfig, executable: String, client: UpstreamClient,
                                      lease: Instance.PortLease, logger: Logger,
                                      observe: @escaping @Sendable (InstanceEvent) -> Void) -> [Instance] {
        let logDirectory = "\(config.stateDirectory)/logs"
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
}
