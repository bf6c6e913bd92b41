public import Hummingbird
import Foundation
import NIOCore

/// The controller's own HTTP routes: `/health`, `/status` and the control API (`/control/...`). The OpenAI
/// gateway routes join them on the same router.
public struct ControllerRoutes: Sendable {
    let supervisor: Supervisor
    let controller: ControllerInfo
    let requestShutdown: @Sendable () -> Void

    public init(supervisor: Supervisor, controller: ControllerInfo, requestShutdown: @escaping @Sendable () -> Void) {
        self.supervisor = supervisor
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
        router.post("/control/shutdown") { _, _ in
            requestShutdown()
            return json(["status": "shutting down"], status: .accepted)
        }
    }

    public func status() async -> FleetStatus {
        let config = supervisor.config
        return FleetStatus(
            controller: controller,
            models: config.models.map { ModelStatus(name: $0.name, aliases: $0.aliases, path: $0.path, replicas: $0.replicas) },
            instances: await supervisor.statuses())
    }
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
