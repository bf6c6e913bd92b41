public import Foundation
import FleetConfig

/// Where one model is in its life, as the supervisor sees it: one value per model, so that "being started on
/// demand", "being put to sleep" and "being hot-swapped" can never overlap.
public enum ModelPhase: Sendable, Equatable {
    /// No instance: an `onDemand` model before its first request, or one past its `idleTimeout`.
    /// `waitingForMemory`: why the last start on demand could not happen yet (it is retried as memory frees up).
    case idle(since: Date, waitingForMemory: String?)
    /// Being started on demand: room is being made under `memoryBudget`, then its instances launch.
    case waking
    /// Its instances run (or it has none to run: a model served by endpoints only).
    case running
    /// Its instances are being retired because nobody used it; `wakeAfter`: a request came meanwhile.
    case sleeping(wakeAfter: Bool)
    /// A hot swap is replacing its instances (a restart, a swap, or a reload onto new settings).
    case replacing

    public var isIdle: Bool {
        if case .idle = self { return true }
        return false
    }

    /// A start, a sleep or a swap is under way.
    public var isChanging: Bool {
        switch self {
        case .waking, .sleeping, .replacing: true
        case .idle, .running: false
        }
    }
}

/// One model as the supervisor runs it.
struct ModelEntry {
    /// The settings it runs with now: a successful swap changes its path here.
    var config: ModelConfig
    var phase: ModelPhase
    /// The generation its next start uses, so log files never overwrite the last ones.
    var nextGeneration = 0
}
