import Foundation
public import Logging
public import ServiceLifecycle
public import FleetConfig
public import FleetUpstream
public import FleetCore

/// Owns the set of instances and each model's lifecycle: creates one instance per model replica, runs them,
/// hands out their ports, starts models on demand and puts idle ones to sleep (`Supervisor+OnDemand`), keeps
/// them within `memoryBudget` (`Supervisor+Memory`), replaces them without downtime (`Supervisor+HotSwap`),
/// applies reloads (`Supervisor+Reload`), and stops them all on graceful shutdown. A `Service`: its `run()`
/// returns once every instance's process is gone.
public actor Supervisor: Service {
    public nonisolated let config: FleetConfig
    public nonisolated let executable: String
    let client: UpstreamClient
    let logger: Logger
    let observe: @Sendable (InstanceEvent) -> Void
    let lease: Instance.PortLease
    /// Waits until an instance has no request in flight (or the drain timeout passed): the gateway's side of a
    /// retirement.
    let drain: @Sendable (InstanceID) async -> Void
    /// Waits until a model removed by a reload has nothing queued or in flight (or the drain timeout passed).
    let drainModel: @Sendable (String) async -> Void
    /// Every instance, sorted by model, replica and generation; during a hot swap a replica has two.
    var instances: [Instance]
    /// Every model, with its settings and where it is in its life: the one place a model's state lives.
    var models: [String: ModelEntry]
    /// What the instances cost under `memoryBudget`.
    var memory: MemoryLedger
    /// Instances started after `run()` began reach its task group through here.
    private let launches: AsyncStream<Instance>
    private let launcher: AsyncStream<Instance>.Continuation
    var shuttingDown = false
    /// How busy a model's pool is and when it was last used: what eviction goes by. Set by the controller.
    var usage: @Sendable (String) async -> PoolUsage? = { _ in nil }

    /// - Parameters:
    ///   - executable: the llama-server to run (see `LlamaServerLocator`).
    ///   - drain: returns once the instance has no request in flight (bounded by the caller's timeout).
    ///   - drainModel: returns once a model a reload removed has nothing queued or in flight (bounded too).
    ///   - observe: called on every instance state change, on the instance's actor; must not block.
    public init(config: FleetConfig, executable: String, client: UpstreamClient, logger: Logger,
                drain: @escaping @Sendable (InstanceID) async -> Void = { _ in },
                drainModel: @escaping @Sendable (String) async -> Void = { _ in },
                observe: @escaping @Sendable (InstanceEvent) -> Void = { _ in }) {
        self.config = config
        self.executable = executable
        self.client = client
        self.logger = logger
        self.observe = observe
        self.drain = drain
        self.drainModel = drainModel
        let ports = PortPool(range: config.portRange)
        let lease = Instance.PortLease(take: { try await ports.take() }, give: { await ports.give($0) })
        self.lease = lease
        let now = Date()
        models = Dictionary(uniqueKeysWithValues: config.models.map { model in
            (model.name, ModelEntry(config: model, phase: model.startOnDemand ? .idle(since: now, waitingForMemory: nil) : .running))
        })
        instances = config.models.filter { !$0.startOnDemand }.flatMap { model in
            (0..<model.replicas).map { replica in
                Self.makeInstance(InstanceID(model: model.name, replica: replica), model: model, config: config,
                                  executable: executable, client: client, lease: lease, logger: logger, observe: observe)
            }
        }
        (launches, launcher) = AsyncStream.makeStream()
        // The load-time check guarantees these fit together.
        memory = MemoryLedger(budget: config.memoryBudget)
        for instance in instances {
            memory.charge(instance.id, model: models[instance.id.model]!.config)
        }
    }

    /// Tells the supervisor how to ask a model's pool whether it is busy and when it was last used (eviction
    /// under `memoryBudget` goes by it).
    public func setUsage(_ usage: @escaping @Sendable (String) async -> PoolUsage?) {
        self.usage = usage
    }

    public func run() async throws {
        logger.info("starting fleet", metadata: ["models": "\(config.models.count)", "instances": "\(instances.count)",
                                                  "llamaServer": "\(executable)"])
        let launcher = self.launcher
        await withTaskGroup(of: Void.self) { group in
            for instance in instances {
                group.addTask { await instance.run() }
            }
            // Graceful shutdown (or cancellation) ends the launch loop below.
            group.addTask {
                try? await gracefulShutdown()
                launcher.finish()
            }
            for await instance in launches {
                group.addTask { await instance.run() }
            }
            shuttingDown = true
            logger.info("stopping every instance")
            for instance in instances {
                await instance.stop()
            }
            await group.waitForAll()
        }
        logger.info("every instance stopped")
    }

    /// Every instance's status, sorted by model, replica and generation; an idle model shows its replicas as
    /// `idle`.
    public func statuses() async -> [InstanceStatus] {
        var result: [InstanceStatus] = []
        for instance in instances {
            result.append(await instance.status())
        }
        for (name, entry) in models {
            guard case .idle(let since, let waitingForMemory) = entry.phase else { continue }
            // The log of the generation that ran last (`fleet logs` on an idle model shows why it went idle).
            let generation = max(0, entry.nextGeneration - 1)
            for replica in 0..<entry.config.replicas {
                let file = InstanceID(model: name, replica: replica, generation: generation).fileName
                var status = InstanceStatus(id: InstanceID.label(model: name, replica: replica), model: name,
                                            replica: replica, port: nil, pid: nil, state: .idle, since: since,
                                            readySince: nil, restarts: 0, lastError: waitingForMemory,
                                            logFile: "\(config.stateDirectory)/logs/\(file).log")
                status.generation = generation
                result.append(status)
            }
        }
        return result.sorted { ($0.model, $0.replica, $0.generation) < ($1.model, $1.replica, $1.generation) }
    }

    /// The models as they run now, sorted by name.
    public func currentModels() -> [ModelConfig] {
        models.values.map(\.config).sorted { $0.name < $1.name }
    }

    // MARK: - Instances

    /// Creates an instance and hands it to the running task group.
    func launch(_ id: InstanceID, model: ModelConfig) -> Instance {
        let instance = Self.makeInstance(id, model: model, config: config, executable: executable, client: client,
                                         lease: lease, logger: logger, observe: observe)
        instances.append(instance)
        instances.sort { $0.id < $1.id }
        memory.charge(id, model: model)
        launcher.yield(instance)
        return instance
    }

    /// Stops an instance that never served (a failed replacement) and forgets it.
    func discard(_ instance: Instance) async {
        await instance.stop()
        await instance.waitUntilStopped()
        instances.removeAll { $0 === instance }
        memory.credit(instance.id)
    }

    /// Out of rotation, drained, stopped, forgotten.
    func retire(_ instance: Instance) async {
        let drain = self.drain
        await instance.retire { await drain(instance.id) }
        await instance.waitUntilStopped()
        instances.removeAll { $0 === instance }
        memory.credit(instance.id)
    }

    private static func makeInstance(_ id: InstanceID, model: ModelConfig, config: FleetConfig, executable: String,
                                     client: UpstreamClient, lease: Instance.PortLease, logger: Logger,
                                     observe: @escaping @Sendable (InstanceEvent) -> Void) -> Instance {
        Instance(id: id,
                 settings: InstanceSettings(model: model, executable: executable, healthCheck: config.healthCheck,
                                            restart: config.restart, stopTimeout: config.stopTimeout,
                                            logDirectory: "\(config.stateDirectory)/logs"),
                 client: client, ports: lease, logger: logger, observe: observe)
    }
}
