public import Logging
public import ServiceLifecycle

/// Owns the set of instances: creates one per model replica, runs them, hands out their ports, replaces them
/// without downtime (`restart`), and stops them all on graceful shutdown. A `Service`: its `run()` returns once
/// every instance's process is gone.
public actor Supervisor: Service {
    public nonisolated let config: FleetConfig
    public nonisolated let executable: String
    private let client: UpstreamClient
    private let logger: Logger
    private let observe: @Sendable (InstanceEvent) -> Void
    private let lease: Instance.PortLease
    /// Waits until an instance has no request in flight (or the drain timeout passed): the gateway's side of a
    /// retirement.
    private let drain: @Sendable (InstanceID) async -> Void
    /// Every instance, sorted by model, replica and generation; during a restart a replica has two.
    private var instances: [Instance]
    /// Instances started after `run()` began reach its task group through here.
    private let launches: AsyncStream<Instance>
    private let launcher: AsyncStream<Instance>.Continuation
    private var shuttingDown = false
    /// Models with a restart under way (one at a time per model).
    private var restarting: Set<String> = []
    /// The models as they run now: a successful swap changes a model's path here.
    private var models: [String: ModelConfig]

    /// - Parameters:
    ///   - executable: the llama-server to run (see `LlamaServerLocator`).
    ///   - drain: returns once the instance has no request in flight (bounded by the caller's timeout).
    ///   - observe: called on every instance state change, on the instance's actor; must not block.
    public init(config: FleetConfig, executable: String, client: UpstreamClient, logger: Logger,
                drain: @escaping @Sendable (InstanceID) async -> Void = { _ in },
                observe: @escaping @Sendable (InstanceEvent) -> Void = { _ in }) {
        self.config = config
        self.executable = executable
        self.client = client
        self.logger = logger
        self.observe = observe
        self.drain = drain
        let ports = PortPool(range: config.portRange)
        let lease = Instance.PortLease(take: { try await ports.take() }, give: { await ports.give($0) })
        self.lease = lease
        self.instances = config.models.flatMap { model in
            (0..<model.replicas).map { replica in
                Self.makeInstance(InstanceID(model: model.name, replica: replica), model: model, config: config,
                                  executable: executable, client: client, lease: lease, logger: logger, observe: observe)
            }
        }
        (launches, launcher) = AsyncStream.makeStream()
        models = Dictionary(uniqueKeysWithValues: config.models.map { ($0.name, $0) })
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

    /// The GGUF a model runs now (after any swap).
    public func modelPath(_ name: String) -> String? { models[name]?.path }

    /// Every instance's status, sorted by model, replica and generation.
    public func statuses() async -> [InstanceStatus] {
        var result: [InstanceStatus] = []
        for instance in instances {
            result.append(await instance.status())
        }
        return result
    }

    // MARK: - Hot-swap restart

    /// Why a restart did not happen, or stopped part way.
    public enum RestartError: Error, CustomStringConvertible, Equatable {
        case unknownModel(String, known: [String])
        case alreadyRestarting(String)
        case shuttingDown
        case replacementFailed(replica: String, reason: String)
        case notAModel(path: String, reason: String)

        public var description: String {
            switch self {
            case .unknownModel(let name, let known):
                "model \"\(name)\" is not in this fleet; it has: \(known.joined(separator: ", "))"
            case .alreadyRestarting(let name):
                "model \"\(name)\" is already being restarted; wait for that to finish"
            case .shuttingDown:
                "the controller is shutting down"
            case .replacementFailed(let replica, let reason):
                "the replacement for \(replica) did not become ready (\(reason)); the old instance keeps serving"
            case .notAModel(_, let reason):
                "\(reason); nothing was changed"
            }
        }
    }

    /// One replica swapped by a restart.
    public struct Replacement: Sendable, Codable, Equatable {
        public var replica: String
        public var oldPid: Int32?
        public var newPid: Int32?
        public var oldPort: Int?
        public var newPort: Int?
    }

    /// Replaces every replica of `model`, one at a time, without failing a request: start a replacement on a new
    /// port, wait until it is ready (it joins the pool then), take the old one out of rotation, let its
    /// requests finish (`drain`), stop it. A replacement that fails to start is stopped and the old instance
    /// keeps serving; the replicas already replaced stay replaced.
    ///
    /// With `path`, the replacements run that GGUF instead (`fleet swap`); it is checked first, and the model
    /// keeps it only when every replica was swapped.
    /// - Throws: `RestartError`.
    public func restart(model name: String, path: String? = nil) async throws(RestartError) -> [Replacement] {
        guard var model = models[name] else {
            throw .unknownModel(name, known: models.keys.sorted())
        }
        if let path {
            if let problem = GGUFFile.problem(at: path) {
                throw .notAModel(path: path, reason: problem.message)
            }
            model.path = path
        }
        return try await replaceReplicas(with: model)
    }

    /// The hot-swap dance for every replica of `model.name`, onto `model`'s settings; `model` becomes the
    /// model's configuration once every replica runs it.
    private func replaceReplicas(with model: ModelConfig) async throws(RestartError) -> [Replacement] {
        let name = model.name
        guard !shuttingDown else { throw .shuttingDown }
        guard restarting.insert(name).inserted else { throw .alreadyRestarting(name) }
        defer { restarting.remove(name) }
        logger.info("hot-swap restart", metadata: ["model": "\(name)", "replicas": "\(model.replicas)"])

        var replaced: [Replacement] = []
        for replica in 0..<model.replicas {
            guard let old = instances.last(where: { $0.id.model == name && $0.id.replica == replica }) else { continue }
            let oldStatus = await old.status()
            var id = old.id
            id.generation += 1
            let replacement = launch(id, model: model)
            guard await replacement.waitUntilReady() else {
                let reason = await replacement.status().lastError ?? "it stopped"
                await replacement.stop()
                await replacement.waitUntilStopped()
                instances.removeAll { $0 === replacement }
                throw .replacementFailed(replica: id.description, reason: reason)
            }
            await retire(old)
            let newStatus = await replacement.status()
            replaced.append(Replacement(replica: id.description, oldPid: oldStatus.pid, newPid: newStatus.pid,
                                        oldPort: oldStatus.port, newPort: newStatus.port))
        }
        models[name] = model
        logger.info("hot-swap restart done", metadata: ["model": "\(name)", "path": "\(model.path)"])
        return replaced
    }

    /// Creates an instance and hands it to the running task group.
    private func launch(_ id: InstanceID, model: ModelConfig) -> Instance {
        let instance = Self.makeInstance(id, model: model, config: config, executable: executable, client: client,
                                         lease: lease, logger: logger, observe: observe)
        instances.append(instance)
        instances.sort { $0.id < $1.id }
        launcher.yield(instance)
        return instance
    }

    /// Out of rotation, drained, stopped, forgotten.
    private func retire(_ instance: Instance) async {
        let drain = self.drain
        await instance.retire { await drain(instance.id) }
        await instance.waitUntilStopped()
        instances.removeAll { $0 === instance }
    }

    // MARK: - Reload

    /// What a reload changed, model by model.
    public struct ReloadReport: Sendable, Codable, Equatable {
        public var added: [String] = []
        public var removed: [String] = []
        /// Their instances were hot-swapped onto new settings.
        public var restarted: [String] = []
        /// Replicas added or retired.
        public var scaled: [String] = []
        /// Only routing changed (aliases, defaults, policy, queue, endpoints): no process was touched.
        public var reconfigured: [String] = []
        public var unchanged: [String] = []
        /// Changes that failed; the models named keep running as they were.
        public var errors: [String] = []

        public init() {}
    }

    /// Brings the running fleet to `newModels`, touching only what differs: new models start, removed ones
    /// drain and stop, models whose llama-server command changed are hot-swapped, replica counts scale (down
    /// drains). Unchanged models keep their processes.
    public func apply(models newModels: [ModelConfig]) async -> ReloadReport {
        var report = ReloadReport()
        guard !shuttingDown else {
            report.errors.append("the controller is shutting down")
            return report
        }
        let wanted = Dictionary(uniqueKeysWithValues: newModels.map { ($0.name, $0) })
        for name in models.keys.sorted() where wanted[name] == nil {
            for instance in instances.filter({ $0.id.model == name }).reversed() {
                await retire(instance)
            }
            models[name] = nil
            report.removed.append(name)
        }
        for model in newModels {
            guard let current = models[model.name] else {
                models[model.name] = model
                for replica in 0..<model.replicas {
                    _ = launch(InstanceID(model: model.name, replica: replica), model: model)
                }
                report.added.append(model.name)
                continue
            }
            var changed = false
            // Scale down first: fewer replicas to swap.
            if model.replicas < current.replicas {
                for instance in instances.filter({ $0.id.model == model.name && $0.id.replica >= model.replicas }).reversed() {
                    await retire(instance)
                }
                models[model.name]?.replicas = model.replicas
                report.scaled.append(model.name)
                changed = true
            }
            let launchesDiffer = LlamaServerCommand(executable: executable, model: current, port: 0)
                != LlamaServerCommand(executable: executable, model: model, port: 0)
            if launchesDiffer {
                var target = model
                target.replicas = min(model.replicas, current.replicas)
                do {
                    _ = try await replaceReplicas(with: target)
                    report.restarted.append(model.name)
                } catch {
                    report.errors.append("\(model.name): \(error)")
                    continue
                }
                changed = true
            }
            if model.replicas > current.replicas {
                for replica in current.replicas..<model.replicas {
                    _ = launch(InstanceID(model: model.name, replica: replica), model: model)
                }
                report.scaled.append(model.name)
                changed = true
            }
            if !changed && model != current {
                report.reconfigured.append(model.name)
            } else if !changed {
                report.unchanged.append(model.name)
            }
            models[model.name] = model
        }
        logger.info("reloaded", metadata: ["added": "\(report.added)", "removed": "\(report.removed)",
                                           "restarted": "\(report.restarted)", "scaled": "\(report.scaled)"])
        return report
    }

    /// The models as they run now, sorted by name.
    public func currentModels() -> [ModelConfig] {
        models.values.sorted { $0.name < $1.name }
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
