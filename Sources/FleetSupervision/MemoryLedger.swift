import FleetCore
import FleetConfig

/// What the running instances cost under `memoryBudget`, by estimate: the one place memory is counted. Owned
/// by the supervisor, which charges an instance when it launches and credits it when it is gone.
struct MemoryLedger {
    /// `memoryBudget` as it applies now (a reload may change it); nil: no limit, nothing is counted.
    var budget: Int?
    private var costOf: [InstanceID: Int] = [:]
    /// Estimates by what they depend on (path, context size, `memory`), so a GGUF header is read once.
    private var estimates: [String: Int] = [:]

    init(budget: Int?) {
        self.budget = budget
    }

    /// One instance's cost: the model's `memory`, else the estimate from its GGUF header (0 when unreadable: the
    /// load-time check reported that already).
    mutating func estimate(for model: ModelConfig) -> Int {
        let key = "\(model.path)|\(model.contextSize ?? -1)|\(model.memory ?? -1)"
        if let known = estimates[key] { return known }
        let bytes = MemoryEstimate.bytes(for: model) ?? 0
        estimates[key] = bytes
        return bytes
    }

    /// An instance of `model` launched (counted only under a budget).
    mutating func charge(_ id: InstanceID, model: ModelConfig) {
        guard budget != nil else { return }
        costOf[id] = estimate(for: model)
    }

    /// Counts an instance that was not counted yet (a budget set by a reload).
    mutating func chargeIfMissing(_ id: InstanceID, model: ModelConfig) {
        if costOf[id] == nil { costOf[id] = estimate(for: model) }
    }

    /// The instance is gone.
    mutating func credit(_ id: InstanceID) {
        costOf[id] = nil
    }

    /// What these instances take together.
    func cost(of ids: some Sequence<InstanceID>) -> Int {
        ids.reduce(0) { $0 + (costOf[$1] ?? 0) }
    }

    /// What every counted instance takes (replacements and draining instances included).
    var inUse: Int { costOf.values.reduce(0, +) }
}
