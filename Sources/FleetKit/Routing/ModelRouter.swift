import Foundation
public import Logging
public import ServiceLifecycle

/// Maps the `model` a client names (a model name or an alias) to that model's pool, and keeps the pools'
/// membership current: instance state changes from the supervisor, unmanaged endpoints' health, and members
/// suspended by failover coming back once a health check passes. A `Service`; the hot path only reads the
/// immutable name table and then talks to one pool.
public final class ModelRouter: Service, Sendable {
    /// Pools by model name and by alias.
    private let pools: [String: ModelPool]
    /// Each pool once, in model order.
    private let uniquePools: [ModelPool]
    /// The canonical name for every name and alias.
    private let canonical: [String: String]
    private let config: FleetConfig
    private let client: UpstreamClient
    private let logger: Logger
    private let events: AsyncStream<InstanceEvent>
    private let eventSink: AsyncStream<InstanceEvent>.Continuation

    public init(config: FleetConfig, client: UpstreamClient, logger: Logger) {
        var pools: [String: ModelPool] = [:]
        var canonical: [String: String] = [:]
        for model in config.models {
            let pool = ModelPool(model: model.name, policy: model.policy, queue: model.queue)
            for name in [model.name] + model.aliases {
                pools[name] = pool
                canonical[name] = model.name
            }
        }
        self.pools = pools
        self.uniquePools = config.models.compactMap { pools[$0.name] }
        self.canonical = canonical
        self.config = config
        self.client = client
        self.logger = logger
        (events, eventSink) = AsyncStream.makeStream()
    }

    /// The pool serving `name` (a model name or alias), or nil.
    public func pool(for name: String) -> ModelPool? { pools[name] }

    /// The model's own name for a name or alias.
    public func modelName(for name: String) -> String? { canonical[name] }

    /// Every name clients may use, sorted.
    public var names: [String] { canonical.keys.sorted() }

    /// Feeds instance state changes to the pools, in order. Safe to call from any thread; does not block.
    public func instanceChanged(_ event: InstanceEvent) {
        eventSink.yield(event)
    }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.applyInstanceEvents() }
            for model in config.models {
                for endpoint in model.endpoints {
                    group.addTask { await self.watchEndpoint(endpoint, model: model) }
                }
            }
            group.addTask { await self.readmitSuspended() }
            try? await gracefulShutdown()
            eventSink.finish()
            group.cancelAll()
        }
    }

    /// One snapshot per model, sorted by model name.
    public func snapshots() async -> [PoolSnapshot] {
        var result: [PoolSnapshot] = []
        for pool in uniquePools {
            result.append(await pool.snapshot())
        }
        return result
    }

    /// Returns once the instance has no request in flight through the gateway, or after `drainTimeout`.
    public func drain(_ id: InstanceID) async {
        guard let pool = pools[id.model] else { return }
        await pool.waitUntilIdle(id: id.memberID, timeout: config.drainTimeout)
    }

    // MARK: - Membership

    private func applyInstanceEvents() async {
        for await event in events {
            guard let model = config.models.first(where: { $0.name == event.id.model }),
                  let pool = pools[model.name] else { continue }
            let id = event.id.memberID
            if event.state == .stopped || event.state == .failed {
                // Gone for good (replaced, or given up on): leaves the pool once its requests are done.
                await pool.retireMember(id: id)
                continue
            }
            guard let port = event.port else {
                await pool.takeOutOfRotation(id: id)
                continue
            }
            let baseURL = "http://127.0.0.1:\(port)"
            let ready = event.state == .ready
            var capacity = model.parallel ?? 1
            if ready && model.parallel == nil {
                capacity = await slots(at: baseURL) ?? 1
            }
            await pool.setMember(id: id, baseURL: baseURL, capacity: capacity, ready: ready)
        }
    }

    /// An unmanaged llama-server: probed like an instance, balanced like one, never started or stopped.
    private func watchEndpoint(_ endpoint: String, model: ModelConfig) async {
        guard let pool = pools[model.name] else { return }
        var wasReady = false
        var capacity = model.parallel ?? 1
        await pool.setEndpoint(endpoint, state: .starting, detail: nil)
        await pool.setMember(id: endpoint, baseURL: endpoint, capacity: capacity, ready: false)
        var logger = logger
        logger[metadataKey: "endpoint"] = "\(endpoint)"
        while !Task.isCancelled {
            let result = await HealthProbe(client: client, url: endpoint + "/health", timeout: config.healthCheck.timeout).check()
            let ready = result == .ready
            if ready != wasReady {
                if ready, model.parallel == nil { capacity = await slots(at: endpoint) ?? capacity }
                logger.info("endpoint \(ready ? "ready" : "not ready")", metadata: ["probe": "\(result)"])
                await pool.setMember(id: endpoint, baseURL: endpoint, capacity: capacity, ready: ready)
                wasReady = ready
            }
            switch result {
            case .ready: await pool.setEndpoint(endpoint, state: .ready, detail: nil)
            case .loading: await pool.setEndpoint(endpoint, state: .starting, detail: "loading model")
            case .down(let why): await pool.setEndpoint(endpoint, state: .unhealthy, detail: why)
            }
            try? await Task.sleep(for: ready ? config.healthCheck.interval : min(config.healthCheck.interval, .seconds(1)))
        }
    }

    /// Members taken out of rotation by failover return once their `/health` answers 200.
    private func readmitSuspended() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(500))
            for pool in uniquePools {
                for (member, _) in await pool.snapshot().members where member.suspended {
                    let result = await HealthProbe(client: client, url: member.baseURL + "/health",
                                                   timeout: config.healthCheck.timeout).check()
                    if result == .ready { await pool.readmit(id: member.id) }
                }
            }
        }
    }

    /// llama-server's slot count, from `/props`.
    private func slots(at baseURL: String) async -> Int? {
        guard let response = try? await client.fetch(UpstreamRequest(url: baseURL + "/props", connectTimeout: .seconds(2),
                                                                     totalTimeout: .seconds(5))),
              response.status == 200,
              let json = try? JSONSerialization.jsonObject(with: Data(response.bodyText.utf8)) as? [String: Any],
              let slots = json["total_slots"] as? Int, slots > 0 else { return nil }
        return slots
    }
}
