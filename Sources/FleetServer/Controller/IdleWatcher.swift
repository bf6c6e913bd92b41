import FleetRouting
import FleetSupervision
import FleetConfig
/// Puts models to sleep after their `idleTimeout` without requests: once a second it asks each such model's
/// pool how long it has been idle (nothing in flight or queued) and tells the supervisor. Also retries the
/// on-demand starts that wait for memory (a model that was busy may be evictable now).
struct IdleWatcher: Sendable {
    let router: ModelRouter
    let supervisor: Supervisor

    func run() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            for model in router.models {
                guard let timeout = model.idleTimeout, let pool = router.pool(for: model.name),
                      let idle = await pool.idleFor(), idle >= timeout,
                      await supervisor.isAwake(model: model.name) else { continue }
                await supervisor.sleep(model: model.name)
            }
            await supervisor.retryWaitingForMemory()
        }
    }
}
