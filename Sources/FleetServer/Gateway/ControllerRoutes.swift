public import Hummingbird
import Foundation
import NIOCore
public import FleetSupervision
public import FleetRouting
public import FleetCore
import FleetConfig

/// The controller's own HTTP routes: `/health`, `/status`, `/metrics` and the control API (`/control/...`). The
/// OpenAI gateway, the logs and the dashboard routes join them on the same router.
public struct ControllerRoutes: Sendable {
    let supervisor: Supervisor
    let router: ModelRouter
    let controller: ControllerInfo
    let requestShutdown: @Sendable () -> Void
    let reloader: Reloader?
    let metrics: FleetMetrics?
    /// The listener's connections, counted for status (nil in tests without a listener).
    let connections: ConnectionRegistry?

    public init(supervisor: Supervisor, router: ModelRouter, controller: ControllerInfo, reloader: Reloader? = nil,
                connections: ConnectionRegistry? = nil,
                metrics: FleetMetrics? = nil, requestShutdown: @escaping @Sendable () -> Void) {
        self.supervisor = supervisor
        self.metrics = metrics
        self.connections = connections
        self.router = router
        self.reloader = reloader
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
        router.get("/metrics") { _, _ in
            guard let metrics else { return json(["error": "metrics are not collected by this controller"], status: .notFound) }
            let text = metrics.render(await status())
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
        }
        router.post("/control/restart/:model") { _, context in
            let name = context.parameters.get("model") ?? ""
            do {
                let before = await self.router.pool(for: name)?.totals
                let replaced = try await supervisor.restart(model: name)
                var result = RestartResult(model: name, replaced: replaced)
                result.requests = await requests(on: name, since: before)
                return json(result)
            } catch let error as Supervisor.RestartError {
                return json(["error": error.description], status: Self.status(for: error))
            }
        }
        router.post("/control/swap/:model") { request, context in
            let name = context.parameters.get("model") ?? ""
            let body = try await request.body.collect(upTo: 64 << 10)
            guard let swap = try? JSONDecoder().decode(SwapRequest.self, from: Data(body.readableBytesView)) else {
                return json(["error": "send {\"path\": \"/path/to/model.gguf\"}"], status: .badRequest)
            }
            let path = FleetConfig.resolve(swap.path, against: FileManager.default.currentDirectoryPath)
            do {
                let before = await self.router.pool(for: name)?.totals
                let replaced = try await supervisor.restart(model: name, path: path)
                var result = RestartResult(model: name, replaced: replaced)
                result.requests = await requests(on: name, since: before)
                result.path = path
                result.configUpdate = updateConfigFile(model: name, path: path)
                return json(result)
            } catch let error as Supervisor.RestartError {
                return json(["error": error.description], status: Self.status(for: error))
            }
        }
        router.post("/control/reload") { _, _ in
            guard let reloader else {
                return json(["error": "this fleet was not started from a fleet.json; there is nothing to reload"], status: .conflict)
            }
            let result = await reloader.reload()
            return json(result, status: result.errors.isEmpty ? .ok : .badRequest)
        }
        router.post("/control/policy") { request, _ in
            await setPolicy(try await request.body.collect(upTo: 64 << 10))
        }
        router.post("/control/shutdown") { _, _ in
            requestShutdown()
            return json(["status": "shutting down"], status: .accepted)
        }
    }

    /// `POST /control/policy {"model": "gemma", "policy": "prefixAware"}`: changes how a model's pool picks an
    /// instance, at once and without touching a process, until the next reload (which applies fleet.json's).
    /// `fleet bench --compare` uses it.
    private func setPolicy(_ body: ByteBuffer) async -> Response {
        let policies = SchedulingPolicy.allCases.map(\.rawValue).joined(separator: ", ")
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any],
              let name = object["model"] as? String, let text = object["policy"] as? String else {
            return json(["error": "send {\"model\": \"NAME\", \"policy\": \"POLICY\"} with POLICY one of: \(policies)"],
                        status: .badRequest)
        }
        guard let policy = SchedulingPolicy(rawValue: text) else {
            return json(["error": "\"\(text)\" is not a policy; use one of: \(policies)"], status: .badRequest)
        }
        guard let (pool, model) = router.route(name) else {
            return json(["error": "model \"\(name)\" does not exist; this fleet serves: \(router.names.joined(separator: ", "))"],
                        status: .notFound)
        }
        let previous = await pool.setPolicy(policy)
        return json(PolicyChange(model: model.name, policy: policy.rawValue, previous: previous.rawValue))
    }

    /// The whole status document, as `/status` and `/metrics` read it.
    public func status() async -> FleetStatus {
        await StatusAssembler(supervisor: supervisor, router: router, controller: controller, connections: connections).status()
    }

    /// What the model's pool answered since `before` (nil when it has no pool).
    private func requests(on model: String, since before: RequestTotals?) async -> RequestTotals? {
        guard let before, let after = await router.pool(for: model)?.totals else { return nil }
        return after - before
    }

    /// The HTTP status a restart or swap that did not happen answers with.
    static func status(for error: Supervisor.RestartError) -> HTTPResponse.Status {
        switch error {
        case .unknownModel: .notFound
        case .alreadyRestarting, .busy, .shuttingDown: .conflict
        case .notAModel: .badRequest
        case .replacementFailed, .replacementFailedInPlace: .internalServerError
        }
    }

    /// After a successful swap, fleet.json says so: the model's `path` is rewritten in place (the rest of the
    /// file untouched). Returns what happened, for the answer.
    private func updateConfigFile(model: String, path: String) -> String {
        let file = controller.config
        guard FileManager.default.fileExists(atPath: file), let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            return "not updated: the fleet was not started from a fleet.json"
        }
        let folder = (file as NSString).deletingLastPathComponent
        let written = path.hasPrefix(folder + "/") ? String(path.dropFirst(folder.count + 1)) : path
        do {
            let edited = try ConfigFileEditor.settingModelPath(in: text, model: model, to: written)
            try edited.write(toFile: file, atomically: true, encoding: .utf8)
            return "updated: \(file) now has \"path\": \"\(written)\" for \(model)"
        } catch {
            return "not updated (\(error)); edit \(file) by hand or the next start runs the old model"
        }
    }
}

func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
    let data = (try? StatusCoding.encoder().encode(value)) ?? Data("{}".utf8)
    return Response(status: status, headers: [.contentType: "application/json"],
                    body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
}
