import Foundation
public import Hummingbird
import NIOCore
import HTTPTypes
public import FleetRouting
public import FleetConfig
public import FleetUpstream

/// The gateway's routes: every route of `GatewayRoute.table` (OpenAI's, Anthropic's and llama-server's own, routed
/// by the model the request names) and `/v1/models` (every model and alias, in OpenAI's or Anthropic's list shape).
public struct GatewayRoutes: Sendable {
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
        for route in GatewayRoute.table {
            http.post(RouterPath(stringLiteral: route.path)) { request, context in
                await handle(request, route: route, connection: connection(of: context.channel))
            }
        }
        http.get("/v1/models") { request, _ in
            request.headers[Self.anthropicVersion] != nil ? anthropicModelList() : modelList()
        }
    }

    /// Answers a request to one of the table's routes (what the routes registered by `register` do) whose body
    /// was read already: `body`, cut one byte past `gateway.maxBodySize` when it was larger.
    func respond(to request: Request, body: ByteBuffer, route: GatewayRoute, channel: any Channel) async -> Response {
        await handle(request, body: body, route: route, connection: connection(of: channel))
    }

    private func connection(of channel: any Channel) -> ClientConnection {
        connections.map { ClientConnection(registry: $0, channel: channel) } ?? .detached
    }

    static let anthropicVersion = HTTPField.Name("anthropic-version")!
    /// Names the model of a request whose body names none (llama-server's native routes).
    static let modelHeader = HTTPField.Name("X-Fleet-Model")!

    /// Anthropic's list shape, for clients that send `anthropic-version`.
    private func anthropicModelList() -> Response {
        let names = router.models.flatMap { [$0.name] + $0.aliases }
        let data = names.map { ["type": "model", "id": $0, "display_name": $0, "created_at": "1970-01-01T00:00:00Z"] }
        var list: [String: Any] = ["data": data, "has_more": false]
        list["first_id"] = names.first ?? NSNull()
        list["last_id"] = names.last ?? NSNull()
        let body = (try? JSONSerialization.data(withJSONObject: list, options: [.sortedKeys])) ?? Data()
        return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
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

    // The async functions on a request's path keep only what lives across a wait: their frames come out of the
    // request's task (GatewayChannelHandler's; Hummingbird's connection task for a request it serves), which keeps
    // its stack at its largest size for as long as the answer streams (a 1,000-stream fleet holds a thousand of
    // them). The work between two waits is in plain functions.

    /// - Parameter body: the body when it was read already (else it is read from `request`).
    private func handle(_ request: Request, body: ByteBuffer? = nil, route: GatewayRoute, connection: ClientConnection) async
        -> Response {
        do {
            let body = if let body { try checkedBody(body) } else { try await collectBody(of: request) }
            let plan = try plan(request, body: body, route: route)
            return try await forwarder.forward(plan.request, path: route.path, pool: plan.pool,
                                               canonicalName: plan.canonicalName, hint: plan.hint, family: route.family,
                                               connection: connection)
        } catch {
            return Self.response(for: error, family: route.family)
        }
    }

    private func collectBody(of request: Request) async throws -> ByteBuffer {
        do {
            return try await request.body.collect(upTo: settings.maxBodySize)
        } catch {
            throw tooLarge
        }
    }

    /// A body read already, refused as `collectBody` refuses it when larger than `gateway.maxBodySize`.
    private func checkedBody(_ body: ByteBuffer) throws -> ByteBuffer {
        guard body.readableBytes <= settings.maxBodySize else { throw tooLarge }
        return body
    }

    private var tooLarge: GatewayError {
        GatewayError(status: .contentTooLarge,
                     message: "request body is larger than \(settings.maxBodySize) bytes (gateway.maxBodySize in fleet.json)",
                     code: "request_too_large", closeConnection: true)
    }

    /// Where and how a request goes.
    private struct Plan {
        var request: ForwardRequest
        var pool: ModelPool
        var canonicalName: String
        var hint: RoutingHint
    }

    /// Reads the body's top level, finds the model's pool, computes the routing hint and injects defaults.
    /// - Throws: `GatewayError` for a body that is not an object, an unknown model, a route the model does not serve.
    private func plan(_ request: Request, body: ByteBuffer, route: GatewayRoute) throws -> Plan {
        var parsed = try CompletionRequest(body: body)
        let name = try modelName(parsed.model, of: request, route: route)
        guard let (pool, model) = router.route(name) else {
            throw GatewayError(status: .notFound,
                               message: "model \"\(name)\" does not exist; this fleet serves: \(router.names.joined(separator: ", "))",
                               code: "model_not_found")
        }
        if let refusal = Self.unsupported(route, by: model) { throw refusal }
        router.requested(model)
        // Where the request would be served best: computed from the body as the client sent it.
        var hint = RoutingHint(session: request.headers[Self.sessionHeader] ?? parsed.sessionKey)
        if let prompt = route.prompt, pool.usesPrefixes {
            hint.fingerprints = PromptFingerprint.blocks(of: body.readableBytesView, shape: prompt)
        }
        parsed.inject(model.defaults, only: route.sampling)
        var forwarded = parsed.forwarded(as: name)
        forwarded.headers = ForwardRequest.forwardable(request.headers)
        let router = self.router
        forwarded.upstreamKey = { baseURL in router.apiKey(for: baseURL, of: model) }
        return Plan(request: forwarded, pool: pool, canonicalName: model.name, hint: hint)
    }

    private static func response(for error: any Error, family: GatewayRoute.Family) -> Response {
        if let error = error as? GatewayError { return error.response(for: family) }
        return GatewayError(status: .internalServerError, message: "\(error)", type: "server_error", code: "internal_error")
            .response(for: family)
    }

    /// Embeddings and rerank need llama-server started for them: a model whose instances were not (and that has no
    /// endpoints, which may have been) gets a clear answer from the gateway instead of llama-server's 501.
    static func unsupported(_ route: GatewayRoute, by model: ModelConfig) -> GatewayError? {
        guard !model.hasRemoteMembers else { return nil }
        if route.path == "/v1/embeddings", !model.servesEmbeddings {
            return GatewayError(status: .badRequest,
                               message: "model \"\(model.name)\" runs without embeddings: add \"args\": [\"--embeddings\", \"--pooling\", \"mean\"] to models.\(model.name) in fleet.json (or run an embedding model that way), then `fleet reload`",
                               code: "embeddings_not_enabled")
        }
        if ["/v1/rerank", "/v1/reranking", "/rerank"].contains(route.path), !model.servesReranking {
            return GatewayError(status: .badRequest,
                               message: "model \"\(model.name)\" runs without reranking: add \"args\": [\"--reranking\"] to models.\(model.name) in fleet.json (with a reranker GGUF), then `fleet reload`",
                               code: "reranking_not_enabled")
        }
        return nil
    }

    /// The model a request names: its body's `model`; for a route whose body need not name one, else `?model=`,
    /// else `X-Fleet-Model`, else the fleet's default model.
    /// - Throws: `GatewayError` 400 saying how to name one.
    private func modelName(_ inBody: String?, of request: Request, route: GatewayRoute) throws -> String {
        if let inBody { return inBody }
        guard route.modelOptional else {
            throw GatewayError(status: .badRequest, message: "the request names no \"model\"; GET /v1/models lists them",
                              code: "missing_model")
        }
        if let name = request.uri.queryParameters["model"].map(String.init), !name.isEmpty { return name }
        if let name = request.headers[Self.modelHeader], !name.isEmpty { return name }
        if let model = FleetConfig.defaultModel(of: router.models) { return model.name }
        throw GatewayError(status: .badRequest,
                          message: "the request names no model and this fleet has \(router.models.count) with none marked default: send \"model\" in the body, ?model=NAME, or an X-Fleet-Model header, or mark one model \"default\": true in fleet.json (GET /v1/models lists them)",
                          code: "missing_model")
    }
}

/// What the gateway forwards: the model asked for, whether the answer streams, and the body.
struct ForwardRequest: Sendable {
    let model: String
    let stream: Bool
    let body: ByteBuffer
    /// The client's own headers that go on to the instance (`anthropic-version`, `anthropic-beta`, `OpenAI-Beta`,
    /// …): every one but its credentials and what belongs to the connection or the body.
    var headers: [(String, String)] = []
    /// The key to send a member that is another fleet's gateway (by its base URL): its own, configured in
    /// fleet.json, never the client's.
    var upstreamKey: @Sendable (String) -> String? = { _ in nil }

    /// Never forwarded: the client's key is for fleet (an instance has none, an endpoint has its own), and the
    /// rest describes the client's connection and body, which fleet's request to the instance has its own of.
    static let withheld: Set<String> = [
        "authorization", "x-api-key", "proxy-authorization", "cookie", "host", "connection", "keep-alive",
        "content-length", "content-type", "transfer-encoding", "te", "trailer", "upgrade", "expect",
        "accept-encoding", "x-fleet-model", "x-fleet-client", "origin", "referer",
    ]

    /// The headers of `fields` that go on to the instance.
    static func forwardable(_ fields: HTTPFields) -> [(String, String)] {
        fields.compactMap { field in
            let name = field.name.canonicalName
            return withheld.contains(name) || name.hasPrefix("sec-") || name.hasPrefix("proxy-") ? nil : (name, field.value)
        }
    }
}

/// What the gateway needs to know of a request body: the model (if it names one), whether it streams, the
/// client's session; and the body to forward, rewritten only when defaults are injected.
///
/// Read in one pass over the body's top level (`TopLevelJSON`): the prompt and messages are skipped, not parsed,
/// and llama-server parses the whole body anyway. A body whose top level is not an object is refused here.
struct CompletionRequest {
    let model: String?
    let stream: Bool
    /// The client's session: OpenAI's `prompt_cache_key`, else its `user`.
    let sessionKey: String?
    private(set) var body: ByteBuffer
    /// Top-level keys the body has: bit `i` for `keys[i]` (room for 32 keys).
    private let present: UInt32

    private static let keys = ["model", "stream", "prompt_cache_key", "user", "temperature", "top_p", "top_k"]
    private static let keyBytes = keys.map { Array($0.utf8) }

    /// - Throws: `GatewayError` 400 for a body that is not a JSON object.
    init(body: ByteBuffer) throws {
        let read = body.withUnsafeReadableBytes { bytes -> (model: String?, session: String?, stream: Bool, present: UInt32)? in
            guard let ranges = TopLevelJSON.values(of: Self.keyBytes, in: bytes) else { return nil }
            /// The key's value when it is a string and not empty.
            func text(_ index: Int) -> String? {
                ranges[index].flatMap { Self.string(UnsafeRawBufferPointer(rebasing: bytes[$0])) }.flatMap { $0.isEmpty ? nil : $0 }
            }
            var present: UInt32 = 0
            for (index, range) in ranges.enumerated() where range != nil { present |= 1 << index }
            let stream = ranges[1].map { UnsafeRawBufferPointer(rebasing: bytes[$0]).elementsEqual("true".utf8) } ?? false
            return (text(0), text(2) ?? text(3), stream, present)
        }
        guard let read else {
            throw GatewayError(status: .badRequest, message: "the request body is not a JSON object", code: "invalid_json")
        }
        self.model = read.model
        self.stream = read.stream
        self.sessionKey = read.session
        self.body = body
        self.present = read.present
    }

    /// Whether the body has `key` (one of `keys`) at its top level.
    private func has(_ key: String) -> Bool {
        guard let index = Self.keys.firstIndex(of: key) else { return false }
        return present & (1 << index) != 0
    }

    /// A JSON string value as text (escapes decoded), or nil when the value is not a string.
    private static func string(_ value: UnsafeRawBufferPointer) -> String? {
        guard value.count >= 2, value.first == UInt8(ascii: "\""), value.last == UInt8(ascii: "\"") else { return nil }
        let inner = UnsafeRawBufferPointer(rebasing: value[1..<(value.count - 1)])
        if !inner.contains(UInt8(ascii: "\\")) { return String(decoding: inner, as: UTF8.self) }
        // Rare: an escape in a name. Foundation decodes it.
        return (try? JSONSerialization.jsonObject(with: Data(value), options: .fragmentsAllowed)) as? String
    }

    /// What to forward, for the model the request was resolved to.
    func forwarded(as name: String) -> ForwardRequest { ForwardRequest(model: name, stream: stream, body: body) }

    /// Adds the model's sampling defaults the route takes, where the request has none: written at the start
    /// of the object, the rest of the body as sent.
    mutating func inject(_ defaults: SamplingDefaults, only fields: [GatewayRoute.Sampling]) {
        var added: [String] = []
        func add(_ key: String, _ value: String?) {
            guard let value, !has(key) else { return }
            added.append("\"\(key)\":\(value)")
        }
        if fields.contains(.temperature) { add("temperature", defaults.temperature.map { "\($0)" }) }
        if fields.contains(.topP) { add("top_p", defaults.topP.map { "\($0)" }) }
        if fields.contains(.topK) { add("top_k", defaults.topK.map { "\($0)" }) }
        guard !added.isEmpty else { return }
        var rest = body
        // The object's opening brace (after any leading space), then whether anything follows before its end.
        while let byte = rest.readInteger(as: UInt8.self), byte != UInt8(ascii: "{") {}
        let empty = rest.withUnsafeReadableBytes { bytes in
            bytes.first { ![0x20, 0x0A, 0x0D, 0x09].contains($0) } == UInt8(ascii: "}")
        }
        var rewritten = ByteBuffer()
        rewritten.reserveCapacity(body.readableBytes + 64)
        rewritten.writeString("{" + added.joined(separator: ",") + (empty ? "" : ","))
        rewritten.writeBuffer(&rest)
        body = rewritten
    }
}
