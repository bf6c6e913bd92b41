import Foundation
import Synchronization
public import Logging
public import ServiceLifecycle
public import FleetConfig
public import FleetUpstream
public import FleetCore

/// Maps the `model` a client names (a model name or an alias) to that model's pool, and keeps the pools'
/// membership current: instance state changes from the supervisor, unmanaged endpoints' health, and members
/// suspended by failover coming back once a health check passes. A `Service`. The hot path reads the name
/// table under one short lock (a reload replaces it) and then talks to one pool.
public final class ModelRouter: Service, Sendable {
    /// What a reload replaces as a whole.
    private struct Table {
        /// Pools by model name and by alias.
        var pools: [String: ModelPool] = [:]
        /// The models in order (their pools are `pools[model.name]`).
        var models: [ModelConfig] = []
        /// The canonical name for every name and alias.
        var canonical: [String: String] = [:]
        /// Models a reload removed, until their drain is over: no request can reach them by name, but their
        /// pools still serve what was queued or in flight, and still see their instances' events.
        var removed: [String: (pool: ModelPool, model: ModelConfig)] = [:]
    }

    private let table = Mutex(Table())
    /// Called with a model's name when a request arrives for a model that starts on demand or idles.
    private let wakeHook = Mutex<(@Sendable (String) -> Void)?>(nil)
    /// Health watchers of unmanaged endpoints, by "model endpoint"; started and stopped as reloads change them.
    private let watchers = Mutex<[String: Task<Void, Never>]>([:])
    /// What each `discover` entry found (`Discovery`); the members it names are watched like endpoints.
    let discovered = Mutex<[DiscoveryEntry: DiscoveryStatus]>([:])
    /// The tasks resolving them; started and stopped as reloads change the entries.
    let discoverers = Mutex<[DiscoveryEntry: Task<Void, Never>]>([:])
    let resolver: DNSResolver
    /// fleet.json's models, as last applied (the routing table adds those imported from peers).
    let configured: Mutex<[ModelConfig]>
    /// What each peer serves, by peer URL (`Peers`).
    let imported = Mutex<[String: [ImportedModel]]>([:])
    let peerTasks = Mutex<[String: Task<Void, Never>]>([:])
    let config: FleetConfig
    let client: UpstreamClient
    private let logger: Logger
    private let events: AsyncStream<InstanceEvent>
    private let eventSink: AsyncStream<InstanceEvent>.Continuation

    public init(config: FleetConfig, client: UpstreamClient, logger: Logger) {
        self.config = config
        self.client = client
        self.logger = logger
        self.resolver = config.resolver.map { DNSResolver(servers: [DNSServer(host: $0.host, port: $0.port)]) } ?? .system()
        self.configured = Mutex(config.models)
        (events, eventSink) = AsyncStream.makeStream()
        table.withLock { $0 = Self.makeTable(config.models, reusing: [:]) }
    }

    private static func makeTable(_ models: [ModelConfig], reusing old: [String: ModelPool]) -> Table {
        var table = Table()
        table.models = models
        for model in models {
            let pool = old[model.name] ?? ModelPool(model: model.name, policy: model.policy, queue: model.queue,
                                                          prefixRouting: model.prefixRouting)
            for name in [model.name] + model.aliases {
                table.pools[name] = pool
                table.canonical[name] = model.name
            }
        }
        return table
    }

    /// The pool and the model serving `name` (a model name or alias), or nil.
    public func route(_ name: String) -> (pool: ModelPool, model: ModelConfig)? {
        table.withLock { table in
            guard let canonical = table.canonical[name], let pool = table.pools[name],
                  let model = table.models.first(where: { $0.name == canonical }) else { return nil }
            return (pool, model)
        }
    }

    /// The pool serving `name` (a model name or alias), or nil.
    public func pool(for name: String) -> ModelPool? { table.withLock { $0.pools[name] } }

    /// The pool and configuration of a model by its name, removed ones still draining included: where its
    /// instances' events and drains go.
    private func poolAndConfig(of name: String) -> (pool: ModelPool, model: ModelConfig)? {
        table.withLock { table in
            if let pool = table.pools[name], let model = table.models.first(where: { $0.name == name }) {
                return (pool, model)
            }
            return table.removed[name]
        }
    }

    /// What the upstream client's transfers hold right now (for status and metrics).
    public var transfers: UpstreamCounts { client.counts }

    /// Every name clients may use, sorted.
    public var names: [String] { table.withLock { $0.canonical.keys.sorted() } }

    /// The models as routed now.
    public var models: [ModelConfig] { table.withLock { $0.models } }

    private var uniquePools: [ModelPool] {
        table.withLock { table in table.models.compactMap { table.pools[$0.name] } }
    }

    /// Sets what a request for an on-demand or idling model calls (the supervisor's `wake`).
    public func onWake(_ hook: @escaping @Sendable (String) -> Void) {
        wakeHook.withLock { $0 = hook }
    }

    /// A request arrived for `model`: starts it if it sleeps.
    public func requested(_ model: ModelConfig) {
        guard model.runsWhileUsed else { return }
        wakeHook.withLock { $0 }?(model.name)
    }

    /// Feeds instance state changes to the pools, in order. Safe to call from any thread; does not block.
    public func instanceChanged(_ event: InstanceEvent) {
        eventSink.yield(event)
    }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.applyInstanceEvents() }
            group.addTask { await self.readmitSuspended() }
            updateDiscoverers()
            updateWatchers()
            startPeers()
            try? await gracefulShutdown()
            peerTasks.withLock { $0.values.forEach { $0.cancel() }; $0.removeAll() }
            eventSink.finish()
            discoverers.withLock { $0.values.forEach { $0.cancel() }; $0.removeAll() }
            watchers.withLock { $0.values.forEach { $0.cancel() }; $0.removeAll() }
            group.cancelAll()
        }
    }

    /// Routes `models` from now on: new models get pools, kept models keep theirs (reconfigured), removed models'
    /// pools stop taking requests (those in flight finish), endpoints start or stop being watched.
    public func apply(_ models: [ModelConfig]) async {
        configured.withLock { $0 = models }
        await applyMerged()
    }

    /// Routes fleet.json's models together with those imported from `peers`.
    func applyMerged() async {
        let models = mergedModels()
        let kept = table.withLock { table -> [(ModelPool, ModelConfig)] in
            let old = table
            table = Self.makeTable(models, reusing: old.pools)
            // Removed models keep their pools until `drainRemoved` is over (a model added back under the same
            // name gets a fresh pool).
            table.removed = old.removed.filter { table.canonical[$0.key] == nil }
            for model in old.models where table.canonical[model.name] == nil {
                if let pool = old.pools[model.name] { table.removed[model.name] = (pool, model) }
            }
            return models.compactMap { model in old.pools[model.name].map { ($0, model) } }
        }
        for (pool, model) in kept {
            await pool.reconfigure(policy: model.policy, queue: model.queue, prefixRouting: model.prefixRouting)
        }
        updateDiscoverers()
        updateWatchers()
    }

    /// Starts a watcher for every endpoint of every model (removed models still draining included) and every
    /// member its `discover` entries found, and stops those no model names any more: their members leave rotation
    /// and go once their requests are done.
    func updateWatchers() {
        let routed = table.withLock { table in table.models + table.removed.values.map(\.model) }
        let found = discoveredMembers()
        let wanted = Dictionary(routed.flatMap { model in
            (model.endpoints + (found[model.name] ?? [])).map { ("\(model.name) \($0)", (model, $0)) }
        }, uniquingKeysWith: { first, _ in first })
        watchers.withLock { watchers in
            for (key, task) in watchers where wanted[key] == nil {
                task.cancel()
                watchers[key] = nil
            }
            for (key, (model, endpoint)) in wanted where watchers[key] == nil {
                watchers[key] = Task { await self.watchEndpoint(endpoint, model: model) }
            }
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
        guard let pool = poolAndConfig(of: id.model)?.pool else { return }
        await pool.waitUntilIdle(id: id.memberID, timeout: config.drainTimeout)
    }

    /// The drain of a model a reload removed: returns once every request it had queued or in flight is done
    /// (its instances and endpoints keep serving them), or after `drainTimeout`, when what is still queued is
    /// refused. Then the model is forgotten, and its endpoints stop being watched.
    public func drainRemoved(_ name: String) async {
        guard let pool = table.withLock({ $0.removed[name]?.pool }) else { return }
        await pool.waitUntilQuiet(timeout: config.drainTimeout)
        await pool.close()
        table.withLock { table in
            if table.removed[name]?.pool === pool { table.removed[name] = nil }
        }
        updateWatchers()
    }

    // MARK: - Membership

    private func applyInstanceEvents() async {
        for await event in events {
            guard let (pool, model) = poolAndConfig(of: event.id.model) else { continue }
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
                capacity = await slots(at: baseURL, model: model) ?? 1
            }
            await pool.setMember(.instance(event.id), baseURL: baseURL, capacity: capacity, ready: ready)
        }
    }

    /// An unmanaged llama-server: probed like an instance, balanced like one, never started or stopped.
    private func watchEndpoint(_ endpoint: String, model: ModelConfig) async {
        guard let pool = poolAndConfig(of: model.name)?.pool else { return }
        var wasReady = false
        var capacity = model.parallel ?? 1
        await pool.setEndpoint(endpoint, state: .starting, detail: nil)
        await pool.setMember(.endpoint(url: endpoint), baseURL: endpoint, capacity: capacity, ready: false)
        var logger = logger
        logger[metadataKey: "endpoint"] = "\(endpoint)"
        while !Task.isCancelled {
            let result = await HealthProbe(client: client, url: endpoint + "/health", timeout: config.healthCheck.timeout).check()
            // Stopped while probing (the endpoint left fleet.json): it must not come back into rotation.
            if Task.isCancelled { break }
            let ready = result.passes
            if ready != wasReady {
                if ready, model.parallel == nil { capacity = await slots(at: endpoint, model: model) ?? capacity }
                logger.info("endpoint \(ready ? "ready" : "not ready")", metadata: ["probe": "\(result)"])
                await pool.setMember(.endpoint(url: endpoint), baseURL: endpoint, capacity: capacity, ready: ready)
                wasReady = ready
            }
            switch result {
            case .ready: await pool.setEndpoint(endpoint, state: .ready, detail: nil)
            case .busy(let why): await pool.setEndpoint(endpoint, state: .ready, detail: "busy: \(why)")
            case .loading: await pool.setEndpoint(endpoint, state: .starting, detail: "loading model")
            case .down(let why): await pool.setEndpoint(endpoint, state: .unhealthy, detail: why)
            }
            try? await Task.sleep(for: ready ? config.healthCheck.interval : min(config.healthCheck.interval, .seconds(1)))
        }
        // No longer in fleet.json: no new request goes to it; those in flight finish (it is not fleet's to stop).
        await pool.retireMember(id: endpoint)
        await pool.removeEndpoint(endpoint)
        logger.info("endpoint removed; its requests in flight finish")
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

    /// The slots of a llama-server (`/props`), or of another fleet's model (the capacity its `/status` shows for
    /// the model's members in rotation).
    private func slots(at baseURL: String, model: ModelConfig) async -> Int? {
        if let response = try? await client.fetch(UpstreamRequest(url: baseURL + "/props", connectTimeout: .seconds(2),
                                                                  totalTimeout: .seconds(5))),
           response.status == 200,
           let json = try? JSONSerialization.jsonObject(with: Data(response.bodyText.utf8)) as? [String: Any],
           let slots = json["total_slots"] as? Int, slots > 0 {
            return slots
        }
        let key = apiKey(for: baseURL, of: model)
        guard let response = try? await client.fetch(UpstreamRequest(
                  url: baseURL + "/status", headers: key.map { [("Authorization", "Bearer \($0)")] } ?? [],
                  connectTimeout: .seconds(2), totalTimeout: .seconds(5))),
              response.status == 200,
              let status = try? StatusCoding.decoder().decode(FleetStatus.self, from: Data(response.bodyText.utf8)) else { return nil }
        let capacity = status.instances.filter { $0.model == model.name && $0.traffic?.inRotation == true }
            .reduce(0) { $0 + ($1.traffic?.capacity ?? 0) }
        return capacity > 0 ? capacity : nil
    }

    /// The key for a member of `model` that is another fleet's gateway: an `endpoints` entry's or a peer's, or
    /// that of the `discover` entry that found it. On every forwarded request: the discovered members are looked
    /// at only when an entry has a key.
    public func apiKey(for baseURL: String, of model: ModelConfig) -> String? {
        if let key = model.endpointKeys[baseURL] { return key }
        guard model.discover.contains(where: { $0.apiKey != nil }) else { return nil }
        return discovered.withLock { found in
            found.first { $0.key.model == model.name && $0.value.members.contains(baseURL) }?.key.source.apiKey
        }
    }
}
