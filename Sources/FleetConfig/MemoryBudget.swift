import FleetCore
/// `memoryBudget`: the most memory the fleet's instances may take together, by their estimated cost
/// (`MemoryEstimate`). Pure rules; the supervisor applies them.
///
/// - Models that start with the fleet must fit together, or the fleet is refused.
/// - A model that may stop (`start: "onDemand"` or an `idleTimeout`) is *evictable*: to start an on-demand model,
///   the least recently used evictable models with nothing in flight or queued are drained and stopped until it
///   fits. A model that always runs is never evicted, so every on-demand model must fit beside those.
public enum MemoryBudget {
    /// A model as the budget sees it.
    public struct Entry: Sendable, Equatable {
        public var name: String
        /// All replicas together, in bytes.
        public var cost: Int
        public var startsWithFleet: Bool
        public var evictable: Bool

        public init(name: String, cost: Int, startsWithFleet: Bool, evictable: Bool) {
            self.name = name
            self.cost = cost
            self.startsWithFleet = startsWithFleet
            self.evictable = evictable
        }

        public init(model: ModelConfig, instanceCost: Int) {
            let replicas = model.path.isEmpty ? 0 : model.replicas
            self.init(name: model.name, cost: instanceCost * replicas, startsWithFleet: !model.startOnDemand,
                      evictable: model.runsWhileUsed)
        }
    }

    /// Why this fleet can never fit `budget`, as (key path, message, fix); empty when it can.
    public static func problems(_ entries: [Entry], budget: Int) -> [(path: String, message: String, fix: String)] {
        var found: [(path: String, message: String, fix: String)] = []
        let atStart = entries.filter(\.startsWithFleet)
        let startTotal = atStart.reduce(0) { $0 + $1.cost }
        if startTotal > budget {
            let parts = atStart.sorted { $0.cost > $1.cost }.map { "\($0.name) \($0.cost.formattedBytes)" }
            found.append(("memoryBudget",
                          "the models that start with the fleet need about \(startTotal.formattedBytes) (\(parts.joined(separator: ", "))) but memoryBudget is \(budget.formattedBytes)",
                          "raise memoryBudget, lower replicas or contextSize, or set \"start\": \"onDemand\" on some models"))
        }
        let pinned = entries.filter { !$0.evictable }.reduce(0) { $0 + $1.cost }
        for entry in entries where entry.evictable && pinned + entry.cost > budget && !(entry.startsWithFleet && startTotal > budget) {
            found.append(("models.\(entry.name)",
                          "needs about \(entry.cost.formattedBytes) but only \(max(0, budget - pinned).formattedBytes) of memoryBudget \(budget.formattedBytes) is ever free beside the models that always run",
                          "raise memoryBudget, lower this model's replicas or contextSize, or give the always-running models an idleTimeout"))
        }
        return found
    }

    /// A running model that could make room.
    public struct Resident: Sendable, Equatable {
        public var name: String
        public var cost: Int
        public var evictable: Bool
        /// Requests in flight or queued: never evicted then.
        public var busy: Bool
        /// When it last had a request; the oldest goes first.
        public var lastUsed: ContinuousClock.Instant

        public init(name: String, cost: Int, evictable: Bool, busy: Bool, lastUsed: ContinuousClock.Instant) {
            self.name = name
            self.cost = cost
            self.evictable = evictable
            self.busy = busy
            self.lastUsed = lastUsed
        }
    }

    /// The models to stop, least recently used first, so that `need` more bytes fit beside `residents`; empty
    /// when it fits already, nil when even stopping every idle evictable model would not make room.
    public static func evictions(need: Int, budget: Int, residents: [Resident]) -> [String]? {
        var used = residents.reduce(0) { $0 + $1.cost }
        guard used + need > budget else { return [] }
        var chosen: [String] = []
        for candidate in residents.filter({ $0.evictable && !$0.busy }).sorted(by: { $0.lastUsed < $1.lastUsed }) {
            chosen.append(candidate.name)
            used -= candidate.cost
            if used + need <= budget { return chosen }
        }
        return nil
    }
}
