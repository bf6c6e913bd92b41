import Foundation
public import FleetSupervision
public import FleetRouting
public import FleetCore
import FleetConfig

/// Assembles the `/status` document: the supervisor's view of every instance, joined with the pools' view of the
/// traffic (and the unmanaged endpoints, which only the pools know), the models, memory and connections.
public struct StatusAssembler: Sendable {
    let supervisor: Supervisor
    let router: ModelRouter
    let controller: ControllerInfo
    let connections: ConnectionRegistry?

    public init(supervisor: Supervisor, router: ModelRouter, controller: ControllerInfo, connections: ConnectionRegistry?) {
        self.supervisor = supervisor
        self.router = router
        self.controller = controller
        self.connections = connections
    }

    public func status() async -> FleetStatus {
        let pools = await router.snapshots()
        var instances = await supervisor.statuses()
        for index in instances.indices {
            let instance = instances[index]
            let id = InstanceID(model: instance.model, replica: instance.replica, generation: instance.generation)
            guard let pool = pools.first(where: { $0.model == instance.model }),
                  let (member, stats) = pool.member(id.memberID) else { continue }
            instances[index].traffic = TrafficStatus(member: member, stats: stats)
        }
        for pool in pools {
            for (url, endpoint) in pool.endpoints.sorted(by: { $0.key < $1.key }) {
                var status = InstanceStatus(id: url, model: pool.model, replica: -1, port: URL(string: url)?.port, pid: nil,
                                            state: endpoint.state, since: endpoint.since, readySince: nil, restarts: 0,
                                            lastError: endpoint.detail, logFile: "")
                status.managed = false
                if let (member, stats) = pool.member(url) { status.traffic = TrafficStatus(member: member, stats: stats) }
                instances.append(status)
            }
        }
        // fleet.json's models, then those only peers serve.
        let local = await supervisor.currentModels()
        let models = (local + router.models.filter { routed in !local.contains { $0.name == routed.name } }).map { model in
            let pool = pools.first { $0.model == model.name }
            var status = ModelStatus(name: model.name, aliases: model.aliases, path: model.path, replicas: model.replicas,
                                     policy: (pool?.policy ?? model.policy).rawValue, queueDepth: pool?.queueDepth ?? 0,
                                     endpoints: model.endpoints)
            status.promptCache = pool?.promptCache
            status.discovery = router.discoveryStatus(of: model.name)
            status.start = model.startOnDemand ? "onDemand" : "always"
            status.idleTimeoutSeconds = model.idleTimeout?.seconds
            return status
        }
        let memory = await supervisor.memoryStatus().map { MemoryStatus(budget: $0.budget, inUse: $0.inUse) }
        return FleetStatus(controller: controller, models: models, instances: instances, memory: memory,
                           connections: connections?.counts, upstream: router.transfers)
    }
}
