public import Hummingbird
import Foundation
import NIOCore

/// The controller's own HTTP routes: `/health`, `/status` and the control API (`/control/...`). The OpenAI
/// gateway routes join them on the same router.
public struct ControllerRoutes: Sendable {
    let supervisor: Supervisor
    let router: ModelRouter
    let controller: ControllerInfo
    let requestShutdown: @Sendable () -> Void

    public init(supervisor: Supervisor, router: ModelRouter, controller: ControllerInfo,
                requestShutdown: @escaping @Sendable () -> Void) {
        self.supervisor = supervisor
        self.router = router
        self.controller = controller
        self.requestShutdown = requestShutdown
    }

    public func register(on router: Router<some RequestContext>) {
        router.get("/health") { _, _ in
            let instances = await supervisor.statuses()
            let ready = instances.filter { $0.state == .ready }.count
            return json(ControllerHealth(status: "ok", ready: ready, instances: instances.count))
        }
        router.get("/status") { _, _ in
            json(await status())
        }
        router.post("/control/restart/:model") { _, context in
            let name = context.parameters.get("model") ?? ""
            do {
                let replaced = try await supervisor.restart(model: name)
                return json(RestartResult(model: name, replaced: replaced))
            } catch let error as Supervisor.RestartError {
                let status: HTTPResponse.Status = switch error {
                case .unknownModel: .notFound
                case .alreadyRestarting, .shuttingDown: .conflict
                case .replacementFailed: .internalServerError
                }
                return json(["error": error.description], status: status)
            }
        }
        router.post("/control/shutdown") { _, _ in
            requestShutdown()
            return json(["status": "shutting down"], status: .accepted)
        }
    }

    /// The supervisor's view of every instance, joined with the pools' view of the traffic (and the unmanaged
    /// endpoints, which only the pools know).
    public func status() async -> FleetStatus {
        let config = supervisor.config
        let pools = await router.snapshots()
        var instances = await supervisor.statuses()
        for index in instances.indices {
            guard let pool = pools.first(where: { $0.model == instances[index].model }),
                  let (member, stats) = pool.member("\(instances[index].id)#\(instances[index].generation)") else { continue }
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
        let models = config.models.map { model in
            let pool = pools.first { $0.model == model.name }
            return ModelStatus(name: model.name, aliases: model.aliases, path: model.path, replicas: model.replicas,
                               policy: model.policy.rawValue, queueDepth: pool?.queueDepth ?? 0, endpoints: model.endpoints)
        }
        return FleetStatus(controller: controller, models: models, instances: instances)
    }
}

/// What `POST /control/restart/{model}` answers once every replica was swapped.
public struct RestartResult: Codable, Sendable {
    public var model: String
    public var replaced: [Supervisor.Replacement]
}

/// `GET /health` on the controller: 200 whenever the controller is up; the counts say how much of the fleet is.
public struct ControllerHealth: Codable, Sendable {
    public var status: String
    public var ready: Int
    public var instances: Int
}

func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
    let data = (try? StatusCoding.encoder().encode(value)) ?? Data("{}".utf8)
    return Response(status: status, headers: [.contentType: "application/json"],
                    body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
}
