import Foundation
import Glibc
public import Logging
public import FleetCore
public import FleetUpstream
import FleetConfig

/// One llama-server process and its life: spawn, wait until ready, probe, restart with backoff, stop.
/// The actor owns the process, its port while it runs, and its state; nothing else changes them.
public actor Instance {
    public nonisolated let id: InstanceID
    public nonisolated let log: InstanceLog
    let settings: InstanceSettings
    let client: UpstreamClient
    private let ports: PortLease
    private let observe: @Sendable (InstanceEvent) -> Void
    let logger: Logger

    public private(set) var state: InstanceState = .stopped
    private var since = Date()
    private var port: Int?
    private var pid: Int32?
    private var restarts = 0
    private var lastError: String?
    private var lastOutput: [String] = []
    private var readySince: Date?
    /// The last health checks timed out while the instance's answers kept arriving (said in the log once).
    private var probesTimedOutWhileServing = false
    private var spawnedAt: ContinuousClock.Instant?
    private var backoff: RestartBackoff
    private var wantsRunning = true
    /// The current process life (spawn + probes) or restart wait; cancelling it stops the process.
    private var current: Task<LifeOutcome, Never>?

    /// Lends ports from the supervisor's allocator.
    public struct PortLease: Sendable {
        public var take: @Sendable () async throws -> Int
        public var give: @Sendable (Int) async -> Void

        public init(take: @escaping @Sendable () async throws -> Int, give: @escaping @Sendable (Int) async -> Void) {
            self.take = take
            self.give = give
        }
    }

    public init(id: InstanceID, settings: InstanceSettings, client: UpstreamClient, ports: PortLease,
                logger: Logger, observe: @escaping @Sendable (InstanceEvent) -> Void) {
        self.id = id
        self.settings = settings
        self.client = client
        self.ports = ports
        self.observe = observe
        var logger = logger
        logger[metadataKey: "instance"] = "\(id)"
        self.logger = logger
        self.backoff = RestartBackoff(settings: settings.restart)
        self.log = InstanceLog(filePath: "\(settings.logDirectory)/\(id.fileName).log")
    }

    /// How one process life ended.
    enum LifeOutcome: Sendable {
        case exited(ProcessExit)
        case startupTimeout(last: String)
        case unhealthy(String)
        case spawnFailed(String)
        case stopped
    }

    /// Supervises the instance until `stop()` (or cancellation of the calling task), or until it fails for good.
    public func run() async {
        await withTaskCancellationHandler {
            await supervise()
        } onCancel: {
            Task { await self.stop() }
        }
    }

    /// Stops the instance: SIGTERM to its process group, `stopTimeout` of grace, then SIGKILL. `run()` returns
    /// once the process is gone.
    public func stop() {
        guard wantsRunning else { return }
        wantsRunning = false
        if state == .starting || state == .ready || state == .unhealthy {
            transition(to: .stopping)
        }
        current?.cancel()
    }

    public func status() -> InstanceStatus {
        var status = InstanceStatus(id: id.description, model: id.model, replica: id.replica, port: port, pid: pid,
                                    state: state, since: since, readySince: readySince, restarts: restarts,
                                    lastError: lastError, logFile: log.filePath)
        status.generation = id.generation
        status.lastOutput = lastOutput.isEmpty ? nil : lastOutput
        return status
    }

    /// Waits until the instance is `ready` (true), or has shown it will not get there on its own: a failed start
    /// (`unhealthy` or `failed` before it was ever ready) or a stop (false).
    public func waitUntilReady() async -> Bool {
        while true {
            switch state {
            case .ready: return true
            case .failed: return false
            // `stopped` is also where an instance begins, before its run() starts: only a stop ends the wait.
            case .stopped where !wantsRunning, .stopping where !wantsRunning: return false
            case .unhealthy where readySince == nil && restarts == 0 && lastError != nil: return false
            default: await nextTransition()
            }
        }
    }

    /// Waits until the process is gone (`stopped` or `failed`).
    public func waitUntilStopped() async {
        while state != .stopped && state != .failed {
            await nextTransition()
        }
    }

    private var transitionWaiters: [CheckedContinuation<Void, Never>] = []

    private func nextTransition() async {
        await withCheckedContinuation { transitionWaiters.append($0) }
    }

    /// Retires the instance without failing a request: out of rotation first (`stopping`), then `drain` (which
    /// returns once its in-flight requests finished, or its drain timeout passed), then the process is stopped.
    public func retire(drain: @Sendable () async -> Void) async {
        guard wantsRunning else { return }
        wantsRunning = false
        if state == .starting || state == .ready || state == .unhealthy {
            transition(to: .stopping, detail: "replaced; draining")
        }
        await drain()
        current?.cancel()
    }

    // MARK: - Supervision loop

    private func supervise() async {
        while wantsRunning {
            guard let port = await leasePort() else { return }
            guard wantsRunning else { break }
            transition(to: .starting)
            let life = Task { await self.live(port: port) }
            current = life
            let outcome = await life.value
            current = nil
            pid = nil
            readySince = nil
            guard wantsRunning else { break }

            let reason: String
            switch outcome {
            case .stopped:
                continue
            case .spawnFailed(let message):
                fail("cannot start \(settings.executable): \(message)")
                return
            case .exited(let exit):
                let tail = await log.errorTail(5)
                reason = "\(exit)" + (tail.isEmpty ? "" : "; last output: " + tail.joined(separator: " | "))
            case .startupTimeout(let last):
                reason = "not ready after \(settings.healthCheck.startupTimeout.formatted) (last probe: \(last))"
            case .unhealthy(let why):
                reason = "failed \(settings.healthCheck.restartAfter) health checks in a row (\(why))"
            }
            lastError = reason
            // Standard error's last lines of the life that just ended: status and `fleet up` show them.
            lastOutput = await log.errorTail(12)
            switch backoff.recordCrash(at: .now) {
            case .giveUp(let crashes):
                await releasePort()
                fail("crash loop: \(crashes) \(crashes == 1 ? "failure" : "failures") within \(settings.restart.crashWindow.formatted); last: \(reason)")
                return
            case .restart(let delay):
                transition(to: .unhealthy, detail: "\(reason); restarting in \(delay.formatted)")
                let wait = Task { () -> LifeOutcome in
                    try? await Task.sleep(for: delay)
                    return .stopped
                }
                current = wait
                _ = await wait.value
                current = nil
                restarts += 1
            }
        }
        // However the last life ended (a stop can land while the process was still loading), a stopped
        // instance says so: `waitUntilStopped` depends on it.
        if state.isActive {
            if state != .stopping { transition(to: .stopping) }
            transition(to: .stopped)
        }
        await releasePort()
    }

    /// The port for the next process: the same one as before when it is still free, so an instance keeps its
    /// address across restarts; otherwise a new one.
    private func leasePort() async -> Int? {
        if let port, PortAllocator.isFree(port) { return port }
        await releasePort()
        do {
            let taken = try await ports.take()
            port = taken
            return taken
        } catch {
            fail("\(error)")
            return nil
        }
    }

    private func releasePort() async {
        if let port {
            await ports.give(port)
            self.port = nil
        }
    }

    private func fail(_ reason: String) {
        lastError = reason
        wantsRunning = false
        transition(to: .failed, detail: reason)
    }

    /// SIGKILL to the process group of the current process (fleet starts each in a group of its own).
    func kill(reason: String) {
        guard let pid else { return }
        logger.warning("declared dead after failed health checks: killing it", metadata: ["pid": "\(pid)", "probe": "\(reason)"])
        _ = Glibc.kill(-pid, SIGKILL)
    }

    func spawned(pid: Int32) {
        self.pid = pid
        spawnedAt = .now
        logger.info("spawned", metadata: ["pid": "\(pid)", "port": "\(port ?? 0)"])
    }

    func becameReady() {
        // Retired or stopped while loading: it stays on its way out, never back in rotation.
        guard wantsRunning else { return }
        // lastError stays: after a restart, status still says why the instance restarted.
        readySince = Date()
        transition(to: .ready)
    }

    func recovered() {
        probesTimedOutWhileServing = false
        backInRotation(detail: "health checks pass again")
    }

    /// A health check timed out while the instance's answers kept arriving (`ProbeResult.busy`): it passes. Said
    /// in the log once per run of such checks; an instance out of rotation for earlier failed checks comes back.
    func busy(_ why: String) {
        if !probesTimedOutWhileServing {
            probesTimedOutWhileServing = true
            var metadata: Logger.Metadata = ["detail": "\(why)"]
            if let port { metadata["port"] = "\(port)" }
            logger.notice("health check timed out while the instance is answering requests: busy, kept in rotation",
                          metadata: metadata)
        }
        backInRotation(detail: "answering requests (\(why))")
    }

    /// An instance out of rotation for failed checks that passes one again is ready (unless it is on its way out).
    private func backInRotation(detail: String) {
        if wantsRunning && state == .unhealthy { transition(to: .ready, detail: detail) }
    }

    func unhealthy(_ why: String, failures: Int) {
        guard wantsRunning && state == .ready else { return }
        lastError = "\(failures) failed health checks: \(why)"
        transition(to: .unhealthy, detail: lastError)
    }

    private func transition(to next: InstanceState, detail: String? = nil) {
        guard next != state else { return }
        let previous = state
        if !previous.canTransition(to: next) {
            logger.error("unexpected state change", metadata: ["from": "\(previous)", "to": "\(next)"])
        }
        state = next
        since = Date()
        var metadata: Logger.Metadata = ["from": "\(previous)", "to": "\(next)"]
        if let port { metadata["port"] = "\(port)" }
        if let pid { metadata["pid"] = "\(pid)" }
        if let detail { metadata["detail"] = "\(detail)" }
        logger.info("state changed", metadata: metadata)
        var event = InstanceEvent(id: id, previous: previous, state: next, port: port, pid: pid, detail: detail,
                                  sinceSpawn: spawnedAt.map { .now - $0 })
        if next == .unhealthy || next == .failed { event.output = lastOutput }
        observe(event)
        let waiters = transitionWaiters
        transitionWaiters.removeAll()
        waiters.forEach { $0.resume() }
    }
}
