import Foundation

// The documents of the control API (`/health`, `/control/...`): what the controller answers and the CLI reads.

/// `GET /health` on the controller: 200 whenever the controller is up; the counts say how much of the fleet is.
public struct ControllerHealth: Codable, Sendable {
    public var status: String
    public var ready: Int
    public var instances: Int

    public init(status: String, ready: Int, instances: Int) {
        self.status = status
        self.ready = ready
        self.instances = instances
    }
}

/// What `POST /control/restart/{model}` and `/control/swap/{model}` answer once every replica was swapped.
public struct RestartResult: Codable, Sendable {
    public var model: String
    public var replaced: [Replacement]
    /// For a swap: the GGUF the model runs now.
    public var path: String?
    /// For a swap: whether fleet.json was updated.
    public var configUpdate: String?
    /// The model's requests answered while the replacement ran, whole or not (counted by its pool).
    public var requests: RequestTotals?

    public init(model: String, replaced: [Replacement]) {
        self.model = model
        self.replaced = replaced
    }

    /// What the controller counted on the model while it was replaced: "no request failed" only when none did.
    public var requestsSummary: String {
        guard let requests else { return "requests during the replacement: not counted (the model has no pool)" }
        let served = "\(requests.served) request(s) answered during the replacement"
        return requests.failed == 0 ? "\(served); no request failed" : "\(served), \(requests.failed) failed"
    }
}

/// The body of `POST /control/swap/{model}`.
public struct SwapRequest: Codable, Sendable {
    public var path: String

    public init(path: String) {
        self.path = path
    }
}

/// One replica swapped by a restart.
public struct Replacement: Sendable, Codable, Equatable {
    public var replica: String
    public var oldPid: Int32?
    public var newPid: Int32?
    public var oldPort: Int?
    public var newPort: Int?

    public init(replica: String, oldPid: Int32?, newPid: Int32?, oldPort: Int?, newPort: Int?) {
        self.replica = replica
        self.oldPid = oldPid
        self.newPid = newPid
        self.oldPort = oldPort
        self.newPort = newPort
    }
}

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

/// What a reload did.
public struct ReloadResult: Sendable, Codable {
    public var applied: ReloadReport?
    /// Every problem of an invalid file (then nothing changed).
    public var errors: [String]
    /// Controller settings that changed in the file but take effect only after `fleet down && fleet up`.
    public var needsControllerRestart: [String]

    public init(applied: ReloadReport?, errors: [String], needsControllerRestart: [String]) {
        self.applied = applied
        self.errors = errors
        self.needsControllerRestart = needsControllerRestart
    }
}

/// What `POST /control/policy` answers once a model's routing policy changed: `{"model": "m", "policy":
/// "prefixAware", "previous": "roundRobin"}` (the request body is `{"model": "m", "policy": "prefixAware"}`).
public struct PolicyChange: Codable, Sendable, Equatable {
    public var model: String
    /// The policy in force now: `roundRobin`, `leastBusy` or `prefixAware`.
    public var policy: String
    /// The policy it replaced.
    public var previous: String

    public init(model: String, policy: String, previous: String) {
        self.model = model
        self.policy = policy
        self.previous = previous
    }
}
