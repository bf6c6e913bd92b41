import Logging
import Foundation
public import FleetCore
public import FleetConfig

extension Supervisor {
    /// Brings the running fleet to `newModels`, touching only what differs (`ReloadPlan`): new models start,
    /// removed ones drain and stop, models whose llama-server command changed are hot-swapped, replica counts
    /// scale (down drains). Unchanged models keep their processes.
    public func apply(models newModels: [ModelConfig]) async -> ReloadReport {
        var report = ReloadReport()
        guard !shuttingDown else {
            report.errors.append("the controller is shutting down")
            return report
        }
        // A model being started on demand has nothing running yet: like an idle one, it takes the new settings.
        let running = models.mapValues { entry in (config: entry.config, idle: entry.phase.isIdle || entry.phase == .waking) }
        for step in ReloadPlan(running: running, wanted: newModels, executable: executable).steps {
            switch step {
            case .remove(let name):
                // What it had queued or in flight finishes first, on every replica; then they go.
                await drainModel(name)
                for instance in instances.filter({ $0.id.model == name }).reversed() {
                    await retire(instance)
                }
                models[name] = nil
                report.removed.append(name)
            case .add(let model):
                await add(model, report: &report)
            case .updateIdle(let model, let changed):
                models[model.name]?.config = model
                if changed { report.reconfigured.append(model.name) } else { report.unchanged.append(model.name) }
            case .update(let update):
                await carryOut(update, report: &report)
            }
        }
        logger.info("reloaded", metadata: ["added": "\(report.added)", "removed": "\(report.removed)",
                                           "restarted": "\(report.restarted)", "scaled": "\(report.scaled)"])
        return report
    }

    private func add(_ model: ModelConfig, report: inout ReloadReport) async {
        report.added.append(model.name)
        if model.startOnDemand {
            models[model.name] = ModelEntry(config: model, phase: .idle(since: Date(), waitingForMemory: nil))
            return
        }
        models[model.name] = ModelEntry(config: model, phase: .waking)
        guard await makeRoom(for: memory.estimate(for: model) * model.replicas, keeping: model.name) else {
            // Only models in use hold the memory: it starts as soon as they idle out.
            models[model.name]?.phase = .idle(since: Date(), waitingForMemory: "waiting for memory: memoryBudget is held by models in use")
            report.errors.append("\(model.name): added but not started yet: memoryBudget is held by models in use; it starts when they idle out")
            return
        }
        guard models[model.name]?.phase == .waking else { return }
        models[model.name]?.phase = .running
        for replica in 0..<model.replicas {
            _ = launch(InstanceID(model: model.name, replica: replica), model: model)
        }
    }

    private func carryOut(_ update: ReloadPlan.Update, report: inout ReloadReport) async {
        let (current, model) = (update.current, update.wanted)
        let name = model.name
        // Scale down first: fewer replicas to swap.
        if update.scaleDown {
            for instance in instances.filter({ $0.id.model == name && $0.id.replica >= model.replicas }).reversed() {
                await retire(instance)
            }
            models[name]?.config.replicas = model.replicas
            report.scaled.append(name)
        }
        if update.swap {
            var target = model
            target.replicas = min(model.replicas, current.replicas)
            do {
                _ = try await replaceReplicas(with: target)
                report.restarted.append(name)
            } catch {
                report.errors.append("\(name): \(error)")
                return
            }
        }
        if update.scaleUp {
            guard await makeRoom(for: memory.estimate(for: model) * (model.replicas - current.replicas), keeping: name) else {
                report.errors.append("\(name): not scaled to \(model.replicas) replicas: memoryBudget has no room for \(model.replicas - current.replicas) more now; reload again once other models idle out")
                models[name]?.config.replicas = current.replicas
                return
            }
            for replica in current.replicas..<model.replicas {
                _ = launch(InstanceID(model: name, replica: replica), model: model)
            }
            report.scaled.append(name)
        }
        if update.routingOnly {
            report.reconfigured.append(name)
        } else if !update.scaleDown && !update.swap && !update.scaleUp {
            report.unchanged.append(name)
        }
        models[name]?.config = model
    }
}
