import Logging
import FleetConfig
import FleetCore

extension Supervisor {
    /// What the running instances take by estimate (replacements and draining instances included).
    public func memoryInUse() -> Int {
        memory.inUse
    }

    /// The budget and what is in use, for status; nil without a budget.
    public func memoryStatus() -> (budget: Int, inUse: Int)? {
        memory.budget.map { ($0, memory.inUse) }
    }

    /// A reload's `memoryBudget` (it was checked to fit the new models); applied before `apply(models:)`.
    public func setMemoryBudget(_ budget: Int?) {
        memory.budget = budget
        guard budget != nil else { return }
        for instance in instances {
            if let model = models[instance.id.model]?.config { memory.chargeIfMissing(instance.id, model: model) }
        }
    }

    /// Stops idle evictable models, least recently used first, until `bytes` more fit the budget; never a model
    /// with requests in flight or queued, never `keeping`. Returns whether it fits now.
    func makeRoom(for bytes: Int, keeping: String) async -> Bool {
        guard let budget = memory.budget else { return true }
        while memory.inUse + bytes > budget {
            var residents: [MemoryBudget.Resident] = []
            for name in Set(instances.map(\.id.model)).sorted() where name != keeping {
                guard let entry = models[name] else { continue }
                let cost = memory.cost(of: instances.filter { $0.id.model == name }.map(\.id))
                let pool = await usage(name)
                residents.append(MemoryBudget.Resident(
                    name: name, cost: cost, evictable: entry.config.runsWhileUsed && !entry.phase.isChanging,
                    busy: pool?.busy ?? true, lastUsed: pool?.lastUsed ?? .now))
            }
            guard let victims = MemoryBudget.evictions(need: bytes, budget: budget, residents: residents),
                  let victim = victims.first else { return memory.inUse + bytes <= budget }
            logger.notice("stopping the least recently used idle model to make room",
                          metadata: ["model": "\(victim)", "for": "\(keeping)", "needs": "\(bytes.formattedBytes)"])
            await sleep(model: victim, makingRoom: true)
            if !isAwake(model: victim) { continue }
            return false  // it could not be stopped (busy again, or restarting): do not spin
        }
        return true
    }
}
