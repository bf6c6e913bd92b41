import Foundation
public import Hummingbird
import NIOCore
import HTTPTypes
public import FleetRouting
public import FleetConfig
public import FleetUpstream

/// The OpenAI-compatible routes: `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings` (routed by the
/// body's `model`) and `/v1/models` (every model and alias).
public struct OpenAIRoutes: Sendable {
    let router: ModelRouter
    let forwarder: Forwarder
    let settings: GatewaySettings
    let connections: ConnectionRegistry?

    /// - Parameter connections: the listener's connections, through which a request learns that its client
    ///   left (then it leaves the queue, and the instance stops working on it); nil in tests without one.
    public init(router: ModelRouter, client: UpstreamClient, config: FleetConfig, metrics: FleetMetrics? = nil,
                connections: ConnectionRegistry? = nil) {
        self.router = router
        self.forwarder = Forwarder(client: client, settings: config.gateway, metrics: metrics)
        self.settings = config.gateway
        self.connections = connections
    }

    public func register(on http: Router<FleetRequestContext>) {
        let routes: [(String, Bool, PromptFingerprint.Shape?)] = [
            ("/v1/chat/completions", true, .chat), ("/v1/completions", true, .completion), ("/v1/embeddings", false, nil),
        ]
        for (path, sampling, prompt) in routes {
            http.post(RouterPath(stringLiteral: path)) { request, context in
                await handle(request, path: path, sampling: sampling, prompt: prompt, connection: connection(of: context))
            }
        }
        http.get("/v1/models") { _, _ in modelList() }
    }

    private func connection(of context: FleetRequestContext) -> ClientConnection {
        connections.map { ClientConnection(registry: $0, channel: context.channel) } ?? .detached
    }

    private func modelList() -> Response {
        let data = router.models.flatMap { model in
            ([model.name] + model.aliases).map { name -> [String: Any] in
                ["id": name, "object": "model", "created": 0, "owned_by": "fleet", "root": model.name]
            }
        }
        let body = (try? JSONSerialization.data(withJSONObject: ["object": "list", "data": data], options: [.sortedKeys])) ?? Data()
        return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// The header a client may name its session with (besides the body's `prompt_cache_key` and `user`).
    static let sessionHeader = HTTPField.Name("X-Session-Id")!

    private func handle(_ request: Request, path: String, sampling: Bool, prompt: PromptFingerprint.Shape?,
                        connection: ClientConnection) async -> Response {
        do {
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: settings.maxBodySize)
            } catch {
                throw OpenAIError(status: .contentTooLarge,
                                  message: "request body is larger than \(settings.maxBodySize) bytes (gateway.maxBodySize in fleet.json)",
                                  code: "request_too_large", closeConnection: true)
            }
            var parsed = try CompletionRequest(body: body)
            guard let (pool, model) = router.route(parsed.model) else {
                throw OpenAIError(status: .notFound,
                                  message: "model \"\(parsed.model)\" does not exist; this fleet serves: \(router.names.joined(separator: ", "))",
                                  code: "model_not_found")
            }
            router.requested(model)
            // Where the request would be served best: computed from the body as the client sent it.
            var hint = RoutingHint(session: request.headers[Self.sessionHeader] ?? parsed.sessionKey)
            if let prompt, pool.usesPrefixes {
                hint.fingerprints = PromptFingerprint.blocks(of: body.readableBytesView, shape: prompt)
            }
            if sampling {
                parsed.inject(model.defaults)
            }
            return try await forwarder.forward(parsed.forwarded, path: path, pool: pool, canonicalName: model.name, hint: hint,
                                               connection: connection)
        } catch let error as OpenAIError {
            return error.response
        } catch {
            return OpenAIError(status: .internalServerError, message: "\(error)", type: "server_error", code: "internal_error").response
        }
    }
}

/// What the gateway forwards: the model asked for, whether the answer streams, and the body.
struct ForwardRequest: Sendable {
    let model: String
    let stream: Bool
    let body: ByteBuffer
}

/// What the gateway needs to know of a request body: the model, whether it streams; and the body to forward,
/// re-encoded only when defaults were injected.
struct CompletionRequest {
    let model: String
    let stream: Bool
    /// The client's session: OpenAI's `prompt_cache_key`, else its `user`.
    let sessionKey: String?
    private(set) var body: ByteBuffer
    private var json: [String: Any]

    /// - Throws: `OpenAIError` 400 for a body that is not a JSON object or names no model.
    init(body: ByteBuffer) throws {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)),
              let json = object as? [String: Any] else {
            throw OpenAIError(status: .badRequest, message: "the request body is not a JSON object", code: "invalid_json")
        }
        guard let model = json["model"] as? String, !model.isEmpty else {
            throw OpenAIError(status: .badRequest, message: "the request names no \"model\"; GET /v1/models lists them",
                              code: "missing_model")
        }
        self.model = model
        self.stream = json["stream"] as? Bool ?? false
        self.sessionKey = [json["prompt_cache_key"], json["user"]].lazy.compactMap { $0 as? String }.first { !$0.isEmpty }
        self.body = body
        self.json = json
    }

    var forwarded: ForwardRequest { ForwardRequest(model: model, stream: stream, body: body) }

    /// Adds the model's sampling defaults where the request has none.
    mutating func inject(_ defaults: SamplingDefaults) {
        var changed = false
        func set(_ key: String, _ value: Any?) {
            guard let value, json[key] == nil else { return }
            json[key] = value
            changed = true
        }
        set("temperature", defaults.temperature)
        set("top_p", defaults.topP)
        set("top_k", defaults.topK)
        if changed, let data = try? JSONSerialization.data(withJSONObject: json) {
            body = ByteBuffer(bytes: data)
        }
    }
}
