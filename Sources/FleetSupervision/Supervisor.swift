import Foundation
public import Logging
public import ServiceLifecycle
public import FleetCore
public import FleetConfig
public import FleetUpstream

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
    /// Waits until a model removed by a reload has nothing queued or in flight (or the drain timeout passed).
    private let drainModel: @Sendable (String) async -> Void
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
    /// Models with no instance because unused (onDemand, or past idleTimeout), and since when.
    private var idleSince: [String: Date] = [:]
    /// Models being put to sleep; a request meanwhile wakes them right after.
    private var sleeping: Set<String> = []
    private var wakeAfterSleep: Set<String> = []
    /// The generation a woken model starts with, so its log files never overwrite the last ones.
    private var nextGeneration: [String: Int] = [:]
    /// Models being started on demand (making room, then launching).
    private var waking: Set<String> = []
    /// `memoryBudget` as it applies now (a reload may change it); nil: no limit.
    private var memoryBudget: Int?
    /// Each running instance's estimated memory, by instance (generation included).
    private var memoryOf: [InstanceID: Int] = [:]
    /// Estimates by what they depend on (path, context size, `memory`), so a GGUF header is read once.
    private var estimates: [String: Int] = [:]
    /// On-demand models that could not start for lack of memory, and why; retried as memory frees up.
    private var waitingForMemory: [String: String] = [:]
    /// How busy a model's pool is and when it was last used: what eviction goes by. Set by the controller.
    private var usage: @Sendable (String) async -> PoolUsage? = { _ in nil }

    /// - Parameters:
    ///   - executable: the llama-server to run (see `LlamaServerLocator`).
    ///   - drain: returns once the instance has no request in flight (bounded by the caller's timeout).
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
        self.instances = config.models.filter { !$0.startOnDemand }.flatMap { model in
            (0..<model.replicas).map { replica in
                Self.makeInstance(InstanceID(model: model.name, replica: replica), model: model, config: config,
                                  executable: executable, client: client, lease: lease, logger: logger, observe: observe)
            }
        }
        (launches, launcher) = AsyncStream.makeStream()
        models = Dictionary(uniqueKeysWithValues: config.models.map { ($0.name, $0) })
        let now = Date()
        idleSince = Dictionary(uniqueKeysWithValues: config.models.filter(\.startOnDemand).map { ($0.name, now) })
        memoryBudget = config.memoryBudget
        if memoryBudget != nil {
            // The load-time check guarantees these fit together.
            for instance in instances {
                memoryOf[instance.id] = MemoryEstimate.bytes(for: models[instance.id.model]!) ?? 0
            }
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
        for (name, since) in idleSince {
            guard let model = models[name] else { continue }
            // The log of the generation that ran last (`fleet logs` on an idle model shows why it went idle).
            let generation = max(0, nextGeneration[name, default: 0] - 1)
            for replica in 0..<model.replicas {
                let file = InstanceID(model: name, replica: replica, generation: generation).fileName
                var status = InstanceStatus(id: InstanceID.label(model: name, replica: replica), model: name, replica: replica, port: nil, pid: nil,
                                            state: .idle, since: since, readySince: nil, restarts: 0,
                                            lastError: waitingForMemory[name], logFile: "\(config.stateDirectory)/logs/\(file).log")
                status.generation = generation
                result.append(status)
            }
        }
        return result.sorted { ($0.model, $0.replica, $0.generation) < ($1.model, $1.replica, $1.generation) }
    }

    // MARK: - On demand and idle

    /// Starts an idle model's instances (a request for it arrived). Under `memoryBudget` it first stops the
    /// least recently used idle models to make room; when no room can be made the model stays idle, says why in
    /// status, and is tried again as memory frees up (its requests wait in the queue meanwhile).
    public func wake(model name: String) async {
        guard !shuttingDown, models[name] != nil else { return }
        if sleeping.contains(name) {
            // Going to sleep right now: start again as soon as that is done (the request waits in the queue).
            wakeAfterSleep.insert(name)
            return
        }
        guard idleSince[name] != nil, waking.insert(name).inserted else { return }
        defer { waking.remove(name) }
        if let model = models[name], memoryBudget != nil {
            let need = estimate(for: model) * model.replicas
            guard await makeRoom(for: need, keeping: name) else {
                let why = "waiting for memory: needs \(need.formattedBytes); \(memoryInUse().formattedBytes) of memoryBudget \(memoryBudget!.formattedBytes) is held by models in use or always running"
                if waitingForMemory.updateValue(why, forKey: name) == nil {
                    logger.warning("cannot start on demand yet", metadata: ["model": "\(name)", "reason": "\(why)"])
                }
                return
            }
        }
        // Re-checked after the awaits above: a reload may have removed it, a shutdown may have begun.
        guard !shuttingDown, let model = models[name], idleSince[name] != nil else { return }
        waitingForMemory[name] = nil
        idleSince[name] = nil
        // Idle means no instance: the generation after the last one that ran (new log files, never the old).
        let generation = nextGeneration[name, default: 0]
        nextGeneration[name] = generation + 1
        logger.info("starting on demand", metadata: ["model": "\(name)"])
        for replica in 0..<model.replicas {
            _ = launch(InstanceID(model: name, replica: replica, generation: generation), model: model)
        }
    }

    /// Tries again the on-demand starts that waited for memory (called when a model stops, and periodically:
    /// a model that was busy may be evictable now).
    public func retryWaitingForMemory() async {
        for name in waitingForMemory.keys.sorted() {
            await wake(model: name)
        }
    }

    /// Drains and stops a model's instances because nobody used it (`idleTimeout`); it shows as idle.
    /// `makingRoom`: stopped to make room for another model, which takes the memory (the starts waiting for
    /// memory are not retried).
    public func sleep(model name: String, makingRoom: Bool = false) async {
        guard !shuttingDown, idleSince[name] == nil, !restarting.contains(name), !sleeping.contains(name) else { return }
        let running = instances.filter { $0.id.model == name }
        guard !running.isEmpty else { return }
        // Only a model that finished loading sleeps; one still starting or restarting is not idle yet.
        for instance in running where await instance.status().state != .ready { return }
        // Again after those awaits: another sleep, a restart or a reload may have begun meanwhile.
        guard !sleeping.contains(name), idleSince[name] == nil, !restarting.contains(name) else { return }
        sleeping.insert(name)
        logger.info("idle: stopping", metadata: ["model": "\(name)"])
        for instance in running.reversed() {
            await retire(instance)
        }
        nextGeneration[name] = (running.map(\.id.generation).max() ?? 0) + 1
        sleeping.remove(name)
        idleSince[name] = Date()
        if wakeAfterSleep.remove(name) != nil { await wake(model: name) }
        if !makingRoom { await retryWaitingForMemory() }
    }

    /// Whether the model has instances (it is not idle).
    public func isAwake(model name: String) -> Bool {
        idleSince[name] == nil && instances.contains { $0.id.model == name }
    }

    // MARK: - Memory budget

    /// What the running instances take by estimate (replacements and draining instances included).
    public func memoryInUse() -> Int {
        instances.reduce(0) { $0 + (memoryOf[$1.id] ?? 0) }
    }

    /// The budget and what is in use, for status; nil without a budget.
    public func memoryStatus() -> (budget: Int, inUse: Int)? {
        memoryBudget.map { ($0, memoryInUse()) }
    }

    /// One instance's cost: the model's `memory`, else the estimate from its GGUF header (0 when unreadable:
    /// the load-time check reported that already).
    private func estimate(for model: ModelConfig) -> Int {
        let key = "\(model.path)|\(model.contextSize ?? -1)|\(model.memory ?? -1)"
        if let known = estimates[key] { return known }
        let bytes = MemoryEstimate.bytes(for: model) ?? 0
        estimates[key] = bytes
        return bytes
    }

    /// Stops idle evictable models, least recently used first, until `bytes` more fit the budget; never a model
    /// with requests in flight or queued, never `keeping`. Returns whether it fits now.
    private func makeRoom(for bytes: Int, keeping: String) async -> Bool {
        guard let budget = memoryBudget else { return true }
        while memoryInUse() + bytes > budget {
            var residents: [MemoryBudget.Resident] = []
            for name in Set(instances.map(\.id.model)).sorted() where name != keeping {
                guard let model = models[name] else { continue }
                let cost = instances.filter { $0.id.model == name }.reduce(0) { $0 + (memoryOf[$1.id] ?? 0) }
                let unavailable = sleeping.contains(name) || restarting.contains(name) || waking.contains(name)
                let pool = await usage(name)
                residents.append(MemoryBudget.Resident(
                    name: name, cost: cost, evictable: model.runsWhileUsed && !unavailable,
                    busy: pool?.busy ?? true, lastUsed: pool?.lastUsed ?? .now))
            }
            guard let victims = MemoryBudget.evictions(need: bytes, budget: budget, residents: residents),
                  let victim = victims.first else { return memoryInUse() + bytes <= budget }
            logger.notice("stopping the least recently used idle model to make room",
                          metadata: ["model": "\(victim)", "for": "\(keeping)", "needs": "\(bytes.formattedBytes)"])
            await sleep(model: victim, makingRoom: true)
            if !isAwake(model: victim) { continue }
            return false  // it could not be stopped (busy again, or restarting): do not spin
        }
        return true
    }

    // MARK: - Hot-swap restart

    /// Why a restart did not happen, or stopped part way.
    public enum RestartError: Error, CustomStringConvertible, Equatable {
        case unknownModel(String, known: [String])
        case alreadyRestarting(String)
        case shuttingDown
        case replacementFailed(replica: String, reason: String)
        /// Restarted in place (no memory for two copies side by side) and the new one failed: the previous
        /// settings were started again.
        case replacementFailedInPlace(replica: String, reason: String)
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
            case .replacementFailedInPlace(let replica, let reason):
                "the replacement for \(replica) did not become ready (\(reason)); it was restarted in place because memoryBudget has no room for two copies side by side, so its previous settings were started again"
            case .notAModel(_, let reason):
                "\(reason); nothing was changed"
            }
        }
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
            if await makeRoom(for: estimate(for: model), keeping: name) {
                let replacement = launch(id, model: model)
                guard await replacement.waitUntilReady() else {
                    let reason = await replacement.status().lastError ?? "it stopped"
                    await discard(replacement)
                    throw .replacementFailed(replica: id.description, reason: reason)
                }
                await retire(old)
            } else {
                // memoryBudget has no room for two copies side by side: replace in place. The replica is down
                // while its successor loads; its requests wait in the queue (or go to the other replicas).
                logger.warning("no room under memoryBudget for a replacement beside the running instance; restarting it in place",
                               metadata: ["replica": "\(old.id)"])
                let previous = models[name] ?? model
                await retire(old)
                let replacement = launch(id, model: model)
                guard await replacement.waitUntilReady() else {
                    let reason = await replacement.status().lastError ?? "it stopped"
                    await discard(replacement)
                    id.generation += 1
                    _ = launch(id, model: previous)
                    throw .replacementFailedInPlace(replica: old.id.description, reason: reason)
                }
            }
            let newStatus = await instances.last(where: { $0.id == id })!.status()
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
        if memoryBudget != nil { memoryOf[id] = estimate(for: model) }
        launcher.yield(instance)
        return instance
    }

    /// Stops an instance that never served (a failed replacement) and forgets it.
    private func discard(_ instance: Instance) async {
        await instance.stop()
        await instance.waitUntilStopped()
        instances.removeAll { $0 === instance }
        memoryOf[instance.id] = nil
    }

    /// Out of rotation, drained, stopped, forgotten.
    private func retire(_ instance: Instance) async {
        let drain = self.drain
        await instance.retire { await drain(instance.id) }
        await instance.waitUntilStopped()
        instances.removeAll { $0 === instance }
        memoryOf[instance.id] = nil
    }

    // MARK: - Reload

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
            // What it had queued or in flight finishes first, on every replica; then they go.
            await drainModel(name)
            for instance in instances.filter({ $0.id.model == name }).reversed() {
                await retire(instance)
            }
            models[name] = nil
            idleSince[name] = nil
            report.removed.append(name)
        }
        for model in newModels {
            guard let current = models[model.name] else {
                models[model.name] = model
                if model.startOnDemand {
                    idleSince[model.name] = Date()
                } else if await makeRoom(for: estimate(for: model) * model.replicas, keeping: model.name) {
                    for replica in 0..<model.replicas {
                        _ = launch(InstanceID(model: model.name, replica: replica), model: model)
                    }
                } else {
                    // Only models in use hold the memory: it starts as soon as they idle out.
                    idleSince[model.name] = Date()
                    waitingForMemory[model.name] = "waiting for memory: memoryBudget is held by models in use"
                    report.errors.append("\(model.name): added but not started yet: memoryBudget is held by models in use; it starts when they idle out")
                }
                report.added.append(model.name)
                continue
            }
            if idleSince[model.name] != nil {
                // Idle: nothing runs, so there is nothing to swap or scale; the next start uses the new settings.
                models[model.name] = model
                (model == current ? { report.unchanged.append(model.name) } : { report.reconfigured.append(model.name) })()
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
                guard await makeRoom(for: estimate(for: model) * (model.replicas - current.replicas), keeping: model.name) else {
                    report.errors.append("\(model.name): not scaled to \(model.replicas) replicas: memoryBudget has no room for \(model.replicas - current.replicas) more now; reload again once other models idle out")
                    models[model.name]?.replicas = current.replicas
                    continue
                }
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

    /// A reload's `memoryBudget` (it was checked to fit the new models); applied before `apply(models:)`.
    public func setMemoryBudget(_ budget: Int?) {
        memoryBudget = budget
        for instance in instances where memoryOf[instance.id] == nil {
            if let model = models[instance.id.model] { memoryOf[instance.id] = estimate(for: model) }
        }
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
