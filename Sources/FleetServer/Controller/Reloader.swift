import Foundation
import FleetConfig
import FleetSupervision
import FleetRouting
public import FleetCore

/// `fleet reload`, SIGHUP and `POST /control/reload`: read fleet.json again and apply only the difference.
public struct Reloader: Sendable {
    let source: String
    let running: FleetConfig
    let supervisor: Supervisor
    let router: ModelRouter
    /// Replaced by every valid reload: a revoked key stops working at once.
    var keys: APIKeys?
    /// One reload at a time (SIGHUP, `fleet reload` and the file watcher may ask at once): a reload that removes a
    /// model waits for its drain, and one that came meanwhile must find the model gone, not half gone.
    let line = ReloadLine()

    /// `watch: true`: reloads whenever fleet.json's content changes on disk (checked every `interval`), until
    /// cancelled. An invalid intermediate save (an editor mid-write) changes nothing and is logged.
    public func watch(every interval: Duration = .seconds(1), onResult: @Sendable (ReloadResult) -> Void) async {
        var last = FileManager.default.contents(atPath: source)
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            let now = FileManager.default.contents(atPath: source)
            guard let now, now != last else { continue }
            last = now
            onResult(await reload())
        }
    }

    /// Validates the file first: an invalid file changes nothing and its problems are returned. Waits for a
    /// reload under way to finish, then reads fleet.json as it is then.
    public func reload() async -> ReloadResult {
        await line.run { await reloadNow() }
    }

    private func reloadNow() async -> ReloadResult {
        let fresh: FleetConfig
        do {
            fresh = try FleetConfig.load(file: source)
        } catch {
            return ReloadResult(applied: nil, errors: error.issues.map(\.description), needsControllerRestart: [])
        }
        let later = fresh.settingsNeedingRestart(comparedWith: running)
        if let keys {
            keys.replace(with: fresh.keysInForce())
        }
        // New pools first, so new instances find theirs when they become ready.
        await router.apply(fresh.models)
        await supervisor.setMemoryBudget(fresh.memoryBudget)
        let report = await supervisor.apply(models: fresh.models)
        return ReloadResult(applied: report, errors: [], needsControllerRestart: later)
    }
}

/// Runs reloads one after another, in the order they were asked for.
actor ReloadLine {
    private var last: Task<Void, Never>?

    func run<Result: Sendable>(_ body: @escaping @Sendable () async -> Result) async -> Result {
        let previous = last
        let turn = Task {
            await previous?.value
            return await body()
        }
        last = Task { _ = await turn.value }
        return await turn.value
    }
}
