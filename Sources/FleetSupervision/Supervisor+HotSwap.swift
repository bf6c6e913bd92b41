import Logging
public import FleetCore
import FleetConfig

extension Supervisor {
    /// Why a restart did not happen, or stopped part way.
    public enum RestartError: Error, CustomStringConvertible, Equatable {
        case unknownModel(String, known: [String])
        case alreadyRestarting(String)
        /// It is being started on demand or put to sleep right now.
        case busy(String)
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
            case .busy(let name):
                "model \"\(name)\" is being started on demand or stopped for being idle right now; try again in a moment"
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
        guard var model = models[name]?.config else {
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

    /// The hot swap, the one place it is written (restart, swap and a reload onto new settings all come here):
    /// every replica of `model.name`, one at a time, onto `model`'s settings; `model` becomes the model's
    /// settings once every replica runs it. Side by side when `memoryBudget` has room for a second copy,
    /// in place otherwise (the replica is down while its successor loads; its requests wait in the queue).
    func replaceReplicas(with model: ModelConfig) async throws(RestartError) -> [Replacement] {
        let name = model.name
        guard !shuttingDown else { throw .shuttingDown }
        switch models[name]?.phase {
        case .idle?:
            // Nothing runs: the next start uses the new settings.
            models[name]?.config = model
            return []
        case .replacing?: throw .alreadyRestarting(name)
        case .waking?, .sleeping?: throw .busy(name)
        case .running?, nil: break
        }
        models[name]?.phase = .replacing
        defer { if models[name]?.phase == .replacing { models[name]?.phase = .running } }
        logger.info("hot-swap restart", metadata: ["model": "\(name)", "replicas": "\(model.replicas)"])

        var replaced: [Replacement] = []
        for replica in 0..<model.replicas {
            guard let old = instances.last(where: { $0.id.model == name && $0.id.replica == replica }) else { continue }
            let oldStatus = await old.status()
            var id = old.id
            id.generation += 1
            if await makeRoom(for: memory.estimate(for: model), keeping: name) {
                let replacement = launch(id, model: model)
                guard await replacement.waitUntilReady() else {
                    let reason = await replacement.status().lastError ?? "it stopped"
                    await discard(replacement)
                    throw .replacementFailed(replica: id.description, reason: reason)
                }
                await retire(old)
            } else {
                logger.warning("no room under memoryBudget for a replacement beside the running instance; restarting it in place",
                               metadata: ["replica": "\(old.id)"])
                let previous = models[name]?.config ?? model
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
        models[name]?.config = model
        logger.info("hot-swap restart done", metadata: ["model": "\(name)", "path": "\(model.path)"])
        return replaced
    }
}
