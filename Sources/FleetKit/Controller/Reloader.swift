import Foundation

/// `fleet reload`, SIGHUP and `POST /control/reload`: read fleet.json again and apply only the difference.
public struct Reloader: Sendable {
    let source: String
    let running: FleetConfig
    let supervisor: Supervisor
    let router: ModelRouter
    /// Replaced by every valid reload: a revoked key stops working at once.
    var keys: APIKeys?

    /// What a reload did.
    public struct Result: Sendable, Codable {
        public var applied: Supervisor.ReloadReport?
        /// Every problem of an invalid file (then nothing changed).
        public var errors: [String]
        /// Controller settings that changed in the file but take effect only after `fleet down && fleet up`.
        public var needsControllerRestart: [String]
    }

    /// `watch: true`: reloads whenever fleet.json's content changes on disk (checked every `interval`), until
    /// cancelled. An invalid intermediate save (an editor mid-write) changes nothing and is logged.
    public func watch(every interval: Duration = .seconds(1), onResult: @Sendable (Result) -> Void) async {
        var last = FileManager.default.contents(atPath: source)
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            let now = FileManager.default.contents(atPath: source)
            guard let now, now != last else { continue }
            last = now
            onResult(await reload())
        }
    }

    /// Validates the file first: an invalid file changes nothing and its problems are returned.
    public func reload() async -> Result {
        let fresh: FleetConfig
        do {
            fresh = try FleetConfig.load(file: source)
        } catch {
            return Result(applied: nil, errors: error.issues.map(\.description), needsControllerRestart: [])
        }
        let later = fresh.settingsNeedingRestart(comparedWith: running)
        if let keys {
            keys.replace(with: fresh.keys.adding(environment: ProcessInfo.processInfo.environment))
        }
        // New pools first, so new instances find theirs when they become ready.
        await router.apply(fresh.models)
        await supervisor.setMemoryBudget(fresh.memoryBudget)
        let report = await supervisor.apply(models: fresh.models)
        return Result(applied: report, errors: [], needsControllerRestart: later)
    }
}
