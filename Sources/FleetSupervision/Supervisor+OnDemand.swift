import Logging
import Foundation
import FleetCore
import FleetConfig

extension Supervisor {
    /// Starts an idle model's instances (a request for it arrived). Under `memoryBudget` it first stops the
    /// least recently used idle models to make room; when no room can be made the model stays idle, says why in
    /// status, and is tried again as memory frees up (its requests wait in the queue meanwhile).
    public func wake(model name: String) async {
        guard !shuttingDown, let entry = models[name] else { return }
        switch entry.phase {
        case .sleeping:
            // Going to sleep right now: start again as soon as that is done (the request waits in the queue).
            models[name]?.phase = .sleeping(wakeAfter: true)
            return
        case .idle(let since, let waiting):
            models[name]?.phase = .waking
            if memory.budget != nil {
                let need = memory.estimate(for: entry.config) * entry.config.replicas
                guard await makeRoom(for: need, keeping: name) else {
                    let why = "waiting for memory: needs \(need.formattedBytes); \(memoryInUse().formattedBytes) of memoryBudget \(memory.budget!.formattedBytes) is held by models in use or always running"
                    if waiting == nil {
                        logger.warning("cannot start on demand yet", metadata: ["model": "\(name)", "reason": "\(why)"])
                    }
                    if models[name]?.phase == .waking { models[name]?.phase = .idle(since: since, waitingForMemory: why) }
                    return
                }
            }
        case .waking, .running, .replacing:
            return
        }
        // Re-checked after the awaits above: a reload may have removed it (or changed it), a shutdown may have begun.
        guard let entry = models[name], entry.phase == .waking else { return }
        guard !shuttingDown else {
            models[name]?.phase = .idle(since: Date(), waitingForMemory: nil)
            return
        }
        models[name]?.phase = .running
        // Idle means no instance: the generation after the last one that ran (new log files, never the old).
        let generation = entry.nextGeneration
        models[name]?.nextGeneration = generation + 1
        logger.info("starting on demand", metadata: ["model": "\(name)"])
        for replica in 0..<entry.config.replicas {
            _ = launch(InstanceID(model: name, replica: replica, generation: generation), model: entry.config)
        }
    }

    /// Tries again the on-demand starts that waited for memory (called when a model stops, and periodically:
    /// a model that was busy may be evictable now).
    public func retryWaitingForMemory() async {
        let waiting = models.filter { if case .idle(_, let why?) = $0.value.phase { !why.isEmpty } else { false } }
        for name in waiting.keys.sorted() {
            await wake(model: name)
        }
    }

    /// Drains and stops a model's instances because nobody used it (`idleTimeout`); it shows as idle.
    /// `makingRoom`: stopped to make room for another model, which takes the memory (the starts waiting for
    /// memory are not retried).
    public func sleep(model name: String, makingRoom: Bool = false) async {
        guard !shuttingDown, models[name]?.phase == .running else { return }
        let running = instances.filter { $0.id.model == name }
        guard !running.isEmpty else { return }
        // Only a model that finished loading sleeps; one still starting or restarting is not idle yet.
        for instance in running where await instance.status().state != .ready { return }
        // Again after those awaits: another sleep, a restart or a reload may have begun meanwhile.
        guard models[name]?.phase == .running else { return }
        models[name]?.phase = .sleeping(wakeAfter: false)
        logger.info("idle: stopping", metadata: ["model": "\(name)"])
        for instance in running.reversed() {
            await retire(instance)
        }
        guard case .sleeping(let wakeAfter)? = models[name]?.phase else { return }  // removed by a reload meanwhile
        models[name]?.nextGeneration = (running.map(\.id.generation).max() ?? 0) + 1
        models[name]?.phase = .idle(since: Date(), waitingForMemory: nil)
        if wakeAfter { await wake(model: name) }
        if !makingRoom { await retryWaitingForMemory() }
    }

    /// Whether the model has instances (it is not idle).
    public func isAwake(model name: String) -> Bool {
        guard let phase = models[name]?.phase, !phase.isIdle else { return false }
        return instances.contains { $0.id.model == name }
    }
}
