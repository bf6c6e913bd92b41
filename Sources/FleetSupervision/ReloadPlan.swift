public import FleetConfig

/// What a reload does, model by model, computed from the models as they run and fleet.json as it now is: pure,
/// so every case is tested without a process. `Supervisor.apply(models:)` carries it out.
public struct ReloadPlan: Sendable, Equatable {
    public enum Step: Sendable, Equatable {
        /// Gone from fleet.json: its queued and in-flight requests finish, then every instance is retired.
        case remove(String)
        /// New: its replicas start (an `onDemand` model waits for its first request).
        case add(ModelConfig)
        /// Nothing of it runs (idle): the next start uses the new settings. `changed`: whether they differ.
        case updateIdle(ModelConfig, changed: Bool)
        /// It runs: see `Update`.
        case update(Update)
    }

    /// A running model's change: retire the replicas beyond the new count, hot-swap the rest when the
    /// llama-server command line differs, start the replicas beyond the old count.
    public struct Update: Sendable, Equatable {
        public var current: ModelConfig
        public var wanted: ModelConfig
        /// The command line differs (path, context, GPU layers, threads, slots, batch, flash attention, args, env).
        public var swap: Bool

        public var scaleDown: Bool { wanted.replicas < current.replicas }
        public var scaleUp: Bool { wanted.replicas > current.replicas }
        /// Only routing changed (aliases, defaults, policy, queue, endpoints): no process is touched.
        public var routingOnly: Bool { !scaleDown && !swap && !scaleUp && wanted != current }
    }

    public var steps: [Step]

    /// - Parameters:
    ///   - running: every model as it runs now, and whether it is idle (has no instance).
    ///   - wanted: the models of the new fleet.json.
    public init(running: [String: (config: ModelConfig, idle: Bool)], wanted: [ModelConfig], executable: String) {
        let names = Set(wanted.map(\.name))
        steps = running.keys.sorted().filter { !names.contains($0) }.map { .remove($0) }
        for model in wanted {
            guard let (current, idle) = running[model.name] else {
                steps.append(.add(model))
                continue
            }
            if idle {
                steps.append(.updateIdle(model, changed: model != current))
                continue
            }
            let swap = LlamaServerCommand(executable: executable, model: current, port: 0)
                != LlamaServerCommand(executable: executable, model: model, port: 0)
            steps.append(.update(Update(current: current, wanted: model, swap: swap)))
        }
    }
}
