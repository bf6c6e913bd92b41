import Foundation
import Glibc
import Logging
import FleetUpstream
import FleetConfig

/// One process life of an instance: spawn and run the process, and probe it (readiness, then liveness) until
/// one of them ends the life.
extension Instance {
    /// One process life: spawn, then probe until it exits, stops being healthy, or is cancelled.
    nonisolated func live(port: Int) async -> LifeOutcome {
        let command = LlamaServerCommand(executable: settings.executable, model: settings.model, port: port)
        await log.beginLife("spawning: \(command.display)")
        return await withTaskGroup(of: LifeOutcome?.self) { group in
            group.addTask {
                do {
                    let exit = try await ProcessLauncher.run(command, stopTimeout: self.settings.stopTimeout, log: self.log) { pid in
                        await self.spawned(pid: pid)
                    }
                    await self.log.mark(exit.description)
                    return Task.isCancelled ? .stopped : .exited(exit)
                } catch is CancellationError {
                    await self.log.mark("stopped")
                    return .stopped
                } catch {
                    return Task.isCancelled ? .stopped : .spawnFailed("\(error)")
                }
            }
            group.addTask { await self.probe(port: port) }
            let first = await group.next() ?? .stopped
            if case .unhealthy(let why)? = first {
                // Declared dead: a process that stopped answering its health checks would not answer SIGTERM
                // either (a SIGSTOPped one cannot). SIGKILL ends it now, and with it its connections, so its
                // in-flight requests end at once (those that got no byte yet go to another instance).
                await self.kill(reason: why)
            }
            // Whichever ended first, the other must end too: a probe verdict stops the process (teardown runs
            // on cancellation), an exit makes probing pointless.
            group.cancelAll()
            for await _ in group {}
            return first ?? .stopped
        }
    }

    /// Readiness, then liveness. Returns a verdict that ends this process life, or nil when cancelled.
    nonisolated func probe(port: Int) async -> LifeOutcome? {
        let health = settings.healthCheck
        let probe = HealthProbe(client: client, port: port, timeout: health.timeout)
        let deadline = ContinuousClock.now + health.startupTimeout
        var last = "no answer yet"
        while true {
            if Task.isCancelled { return nil }
            let result = await probe.check()
            if result == .ready { break }
            if case .down(let why) = result { last = why } else { last = "loading model" }
            if ContinuousClock.now >= deadline { return .startupTimeout(last: last) }
            do { try await Task.sleep(for: settings.readinessPollInterval) } catch { return nil }
        }
        await becameReady()

        var failures = 0
        while true {
            do { try await Task.sleep(for: health.interval) } catch { return nil }
            switch await probe.check() {
            case .ready:
                failures = 0
                await recovered()
            case .busy(let why):
                // Its answers were arriving while /health did not answer: busy, not dead (a storm of new
                // connections, HTTP threads all taken, a starved machine). Killing it would cut every stream
                // it serves.
                failures = 0
                await busy(why)
            case .loading:
                failures += 1
                last = "answers 503 again"
            case .down(let why):
                failures += 1
                last = why
            }
            if Task.isCancelled { return nil }
            if failures >= health.restartAfter { return .unhealthy(last) }
            if failures >= health.unhealthyAfter { await unhealthy(last, failures: failures) }
        }
    }
}
