import FleetTestSupport
import Foundation
import NIOCore
import Testing
@testable import FleetConfig
@testable import FleetCore
@testable import FleetUpstream
@testable import FleetServer
@testable import FleetClient

/// Every llama-server route through the gateway, over fake servers that answer each in its family's shape.
@Suite("every llama-server route through the gateway", .timeLimit(.minutes(3)))
struct LlamaServerRoutesTests {
    let directory = temporaryDirectory()

    /// A body each route accepts; the model named as `model` when given.
    func body(for path: String, model: String?, stream: Bool = false) -> String {
        var object: [String: Any] = [:]
        if let model { object["model"] = model }
        switch path {
        case "/v1/messages", "/v1/messages/count_tokens", "/v1/chat/completions", "/v1/chat/completions/input_tokens", "/apply-template":
            object["messages"] = [["role": "user", "content": "hello"]]
            object["max_tokens"] = 3
        case "/v1/responses", "/v1/responses/input_tokens", "/v1/embeddings":
            object["input"] = "hello"
        case "/v1/rerank", "/v1/reranking", "/rerank":
            object["query"] = "q"
            object["documents"] = ["a", "b"]
        case "/tokenize":
            object["content"] = "héllo"
        case "/detokenize":
            object["tokens"] = [104, 105]
        case "/infill":
            object["input_prefix"] = "def f("
            object["input_suffix"] = ")"
        default:
            object["prompt"] = "hello"
        }
        if stream { object["stream"] = true }
        return String(data: try! JSONSerialization.data(withJSONObject: object), encoding: .utf8)!
    }

    @Test func everyRouteReachesTheSamePathOnAnInstanceAndIsBalancedAndRenamed() async throws {
        let config = fakeFleetConfig(directory: directory, args: ["--fake-tokens", "3", "--fake-token-delay", "0", "--embeddings", "--reranking"],
                                     replicas: 2) {
            $0.models[0].aliases = ["fake-alias"]
        }
        try await withController(config) { url, control in
            try await UpstreamClient.with { client in
                for route in GatewayRoute.table {
                    var instances: Set<String> = []
                    for _ in 0..<2 {
                        let response = try await post(url + route.path, body(for: route.path, model: "fake-alias"), client: client)
                        #expect(response.status == 200, "\(route.path): \(response.bodyText)")
                        instances.insert(response.header("X-Fleet-Instance") ?? "?")
                        if response.bodyText.contains(#""model""#) {
                            #expect(response.bodyText.contains(#""model":"fake-alias""#), "\(route.path): \(response.bodyText)")
                        }
                    }
                    #expect(instances == ["fake/0", "fake/1"], "\(route.path) is balanced: \(instances)")
                }
                // The fake saw each path as sent.
                for port in try await control.status().instances.compactMap(\.port) {
                    let stats = try await fakeStats("http://127.0.0.1:\(port)", client: client)
                    #expect(stats["lastPath"] as? String == "/apply-template")
                }
            }
        }
    }

    @Test func anthropicStreamsPassThroughAsEventPairsWithTheAskedNameAndAreCounted() async throws {
        let config = fakeFleetConfig(directory: directory, args: ["--fake-tokens", "4", "--fake-token-delay", "0.01"]) {
            $0.models[0].aliases = ["claude-local"]
        }
        try await withController(config) { url, control in
            let response = try await UpstreamClient.with {
                try await post(url + "/v1/messages", body(for: "/v1/messages", model: "claude-local", stream: true), client: $0)
            }
            #expect(response.status == 200)
            let text = response.bodyText
            #expect(text.hasPrefix("event: message_start\ndata: {"), "\(text.prefix(200))")
            #expect(text.contains(#""model":"claude-local""#) && !text.contains(#""model":"fake""#))
            #expect(text.components(separatedBy: "event: content_block_delta\n").count == 4, "max_tokens 3: three deltas")
            #expect(text.hasSuffix("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"))
            try await eventually("counted") { try await control.status().instances[0].traffic?.tokens == 3 }
            let cache = try await control.status().instances[0].traffic?.promptCache
            #expect((cache?.promptTokens ?? 0) > 0, "input tokens from message_start: \(String(describing: cache))")
        }
    }

    @Test func eachFamilyGetsItsOwnErrorShape() async throws {
        var config = fakeFleetConfig(directory: directory, replicas: 1)
        config.keys.user = ["user-key"]
        try await withController(config) { url, _ in
            try await UpstreamClient.with { client in
                func send(_ path: String, _ body: String, key: String? = "user-key") async throws -> (Int, [String: Any]) {
                    var headers = [("Content-Type", "application/json")]
                    if let key { headers.append(("x-api-key", key)) }
                    let response = try await client.fetch(UpstreamRequest(method: "POST", url: url + path, headers: headers,
                                                                          body: Array(body.utf8)))
                    return (response.status, try JSONSerialization.jsonObject(with: Data(response.bodyText.utf8)) as? [String: Any] ?? [:])
                }
                let (missing, anthropic) = try await send("/v1/messages", body(for: "/v1/messages", model: "nope"))
                #expect(missing == 404 && anthropic["type"] as? String == "error")
                #expect((anthropic["error"] as? [String: Any])?["type"] as? String == "not_found_error", "\(anthropic)")
                let (unauthorized, noKey) = try await send("/v1/messages/count_tokens", body(for: "/v1/messages", model: "fake"), key: nil)
                #expect(unauthorized == 401 && (noKey["error"] as? [String: Any])?["type"] as? String == "authentication_error", "\(noKey)")
                let (openAIMissing, openAI) = try await send("/v1/responses", body(for: "/v1/responses", model: "nope"))
                #expect(openAIMissing == 404 && (openAI["error"] as? [String: Any])?["code"] as? String == "model_not_found", "\(openAI)")
                let (unnamed, noModel) = try await send("/v1/messages", #"{"messages":[]}"#)
                #expect(unnamed == 400 && (noModel["error"] as? [String: Any])?["type"] as? String == "invalid_request_error")
            }
        }
    }

    @Test func routesWithoutAModelFindItInTheQueryTheHeaderOrTheDefault() async throws {
        var config = fakeFleetConfig(directory: directory, replicas: 1)
        var second = config.models[0]
        second.name = "other"
        config.models.append(second)
        try await withController(config) { url, _ in
            try await UpstreamClient.with { client in
                let tokenize = body(for: "/tokenize", model: nil)
                let none = try await post(url + "/tokenize", tokenize, client: client)
                #expect(none.status == 400 && none.bodyText.contains("X-Fleet-Model") && none.bodyText.contains("default"),
                        "\(none.bodyText)")
                let query = try await post(url + "/tokenize?model=other", tokenize, client: client)
                #expect(query.status == 200 && query.header("X-Fleet-Instance") == "other/0")
                let header = try await client.fetch(UpstreamRequest(method: "POST", url: url + "/tokenize",
                                                                    headers: [("Content-Type", "application/json"), ("X-Fleet-Model", "fake")],
                                                                    body: Array(tokenize.utf8)))
                #expect(header.status == 200 && header.header("X-Fleet-Instance") == "fake/0")
                let chat = try await post(url + "/v1/chat/completions", #"{"messages":[]}"#, client: client)
                #expect(chat.status == 400, "OpenAI's own routes still need their model")
            }
        }
        config.models[1].isDefault = true
        try await withController(config) { url, _ in
            let response = try await UpstreamClient.with { try await post(url + "/detokenize", body(for: "/detokenize", model: nil), client: $0) }
            #expect(response.status == 200 && response.header("X-Fleet-Instance") == "other/0")
            #expect(response.bodyText.contains(#""content":"hi""#), "tokenize/detokenize round-trips: \(response.bodyText)")
        }
    }

    @Test func aFailingInstanceIsFailedOverOnEveryRouteBeforeItsFirstByte() async throws {
        let (broken, brokenURL) = try await startFakeEndpoint(["--fake-completion-status", "500"])
        defer { broken.terminate() }
        let config = fakeFleetConfig(directory: directory, args: ["--fake-tokens", "2", "--fake-token-delay", "0", "--embeddings", "--reranking"],
                                     replicas: 1) {
            $0.models[0].endpoints = [brokenURL]
            $0.gateway.retries = 1
        }
        try await withController(config, waitForReady: 2) { url, _ in
            try await UpstreamClient.with { client in
                for route in GatewayRoute.table {
                    for _ in 0..<2 {
                        let response = try await post(url + route.path, body(for: route.path, model: "fake"), client: client)
                        #expect(response.status == 200 && response.header("X-Fleet-Instance") == "fake/0", "\(route.path)")
                    }
                }
            }
        }
    }

    @Test func clientHeadersGoOnToTheInstanceButNeverTheClientsKey() async throws {
        var config = fakeFleetConfig(directory: directory, replicas: 1)
        config.keys.user = ["user-key"]
        try await withController(config) { url, control in
            try await UpstreamClient.with { client in
                let response = try await client.fetch(UpstreamRequest(
                    method: "POST", url: url + "/v1/messages",
                    headers: [("Content-Type", "application/json"), ("x-api-key", "user-key"), ("anthropic-version", "2023-06-01"),
                              ("anthropic-beta", "tools-2024"), ("Authorization", "Bearer user-key")],
                    body: Array(body(for: "/v1/messages", model: "fake").utf8)))
                #expect(response.status == 200)
                let port = try #require(try await control.status().instances[0].port)
                let seen = try #require(try await fakeStats("http://127.0.0.1:\(port)", client: client)["lastHeaders"] as? [String])
                #expect(seen.contains("anthropic-version: 2023-06-01") && seen.contains("anthropic-beta: tools-2024"), "\(seen)")
                #expect(!seen.contains { $0.contains("user-key") }, "the client's key stays with fleet: \(seen)")
            }
        }
    }

    @Test func embeddingsAndRerankOnAModelRunWithoutThemGetAClearAnswerFromTheGateway() async throws {
        try await withController(fakeFleetConfig(directory: directory, replicas: 1)) { url, control in
            try await UpstreamClient.with { client in
                let embeddings = try await post(url + "/v1/embeddings", body(for: "/v1/embeddings", model: "fake"), client: client)
                #expect(embeddings.status == 400 && embeddings.bodyText.contains("embeddings_not_enabled")
                        && embeddings.bodyText.contains("--embeddings"), "\(embeddings.bodyText)")
                let rerank = try await post(url + "/v1/rerank", body(for: "/v1/rerank", model: "fake"), client: client)
                #expect(rerank.status == 400 && rerank.bodyText.contains("--reranking"), "\(rerank.bodyText)")
                #expect(try await control.status().instances[0].traffic?.served == 0, "nothing reached the instance")
            }
        }
    }

    @Test func aClientThatLeavesOnAnyRouteFreesItsSlotAtOnce() async throws {
        // Each answer thinks for 10 s first: only the client leaving can end it sooner.
        let config = fakeFleetConfig(directory: directory, args: ["--fake-prompt-delay", "10", "--embeddings", "--reranking"],
                                     replicas: 1)
        try await withController(config) { url, control in
            for route in GatewayRoute.table {
                let client = try RawConnection(port: config.listen.port)
                let payload = body(for: route.path, model: "fake")
                client.send("POST \(route.path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(payload.utf8.count)\r\n\r\n\(payload)")
                try await eventually("\(route.path) in flight") { try await control.status().instances[0].traffic?.inFlight == 1 }
                client.hangUp()
                try await eventually(timeout: .seconds(3), "\(route.path): the slot is free again") {
                    try await control.status().instances[0].traffic?.inFlight == 0
                }
            }
            let metrics = try await UpstreamClient.with { try await $0.fetch(UpstreamRequest(url: url + "/metrics")) }.bodyText
            let left = metrics.split(separator: "\n").first { $0.hasPrefix("fleet_requests_total{") && $0.contains(#"status="499""#) }
            #expect(left?.hasSuffix(" \(GatewayRoute.table.count)") == true, "every departure counted as 499: \(String(describing: left))")
        }
    }

    @Test func theModelListSpeaksAnthropicToAnthropicClients() async throws {
        try await withController(fakeFleetConfig(directory: directory, replicas: 1) { $0.models[0].aliases = ["a"] }) { url, _ in
            let response = try await UpstreamClient.with {
                try await $0.fetch(UpstreamRequest(url: url + "/v1/models", headers: [("anthropic-version", "2023-06-01")]))
            }
            let json = try #require(try JSONSerialization.jsonObject(with: Data(response.bodyText.utf8)) as? [String: Any])
            #expect((json["data"] as? [[String: Any]])?.map { $0["id"] as? String } == ["fake", "a"])
            #expect((json["data"] as? [[String: Any]])?.first?["type"] as? String == "model")
            #expect(json["has_more"] as? Bool == false && json["first_id"] as? String == "fake")
        }
    }

    @Test func theRouteTableHasEveryRouteOfThePinnedLlamaServerOnce() {
        let paths = GatewayRoute.table.map(\.path)
        #expect(Set(paths).count == paths.count)
        #expect(Set(paths) == ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/messages",
                               "/v1/messages/count_tokens", "/v1/responses", "/v1/chat/completions/input_tokens",
                               "/v1/responses/input_tokens", "/v1/rerank", "/v1/reranking", "/rerank", "/completion",
                               "/infill", "/tokenize", "/detokenize", "/apply-template"])
        #expect(GatewayRoute.table.filter { $0.family == .anthropic }.map(\.path) == ["/v1/messages", "/v1/messages/count_tokens"])
        #expect(GatewayRoute.family(of: "/v1/messages/count_tokens") == .anthropic && GatewayRoute.family(of: "/v1/models") == .openAI)
        #expect(GatewayRoute.table.filter(\.modelOptional).map(\.path).allSatisfy { !$0.hasPrefix("/v1/") || $0.contains("rerank") })
    }

    @Test func defaultsGoOnlyWhereTheRouteTakesThem() {
        var defaults = SamplingDefaults(temperature: 0.3, topP: 0.9, topK: 20)
        defaults.topK = 20
        for (route, expected) in [("/v1/messages", ["temperature", "top_p", "top_k"]), ("/v1/responses", ["temperature", "top_p"]),
                                  ("/tokenize", []), ("/v1/embeddings", [])] {
            let table = GatewayRoute.table.first { $0.path == route }!
            var request = try! CompletionRequest(body: ByteBuffer(string: #"{"model":"m"}"#))
            request.inject(defaults, only: table.sampling)
            let json = try! JSONSerialization.jsonObject(with: Data(request.forwarded(as: "m").body.readableBytesView)) as! [String: Any]
            #expect(Set(json.keys).subtracting(["model"]) == Set(expected), "\(route)")
        }
    }
}

@Suite("Anthropic event streams")
struct AnthropicFramingTests {
    @Test func eventPairsAreRenamedWholeHoweverTheStreamIsCut() {
        let stream = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"/models/gemma.gguf\",\"usage\":{\"input_tokens\":5}}}\n\n"
            + "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hé\"}}\n\n"
            + "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
        let expected = stream.replacingOccurrences(of: "/models/gemma.gguf", with: "claude-local")
        let bytes = Array(stream.utf8)
        for cut in 1..<bytes.count {
            var framer = SSEFramer()
            var output = ""
            for part in [bytes[..<cut], bytes[cut...]] {
                for event in framer.feed(ByteBuffer(bytes: Array(part))) {
                    output += String(buffer: ModelFieldRewriter.rewrite(event, to: "claude-local"))
                }
            }
            if let rest = framer.flush() { output += String(buffer: rest) }
            #expect(output == expected, "cut at \(cut)")
        }
    }
}

/// The gateway reads what routing needs from the body's top level only, without parsing the rest.
@Suite("reading a request body")
struct CompletionRequestTests {
    @Test func modelStreamAndSessionComeFromTheTopLevelOnly() throws {
        let body = #" { "messages": [{"role":"user","content":"{\"model\":\"inner\",\"stream\":false}"}], "metadata": {"model": "nested"},"#
            + #" "model" : "gem\u006da", "stream":true, "user": "u1" } "#
        let request = try CompletionRequest(body: ByteBuffer(string: body))
        #expect(request.model == "gemma" && request.stream && request.sessionKey == "u1")
        let plain = try CompletionRequest(body: ByteBuffer(string: #"{"model":"m","prompt_cache_key":"k","user":"u"}"#))
        #expect(plain.model == "m" && !plain.stream && plain.sessionKey == "k")
        #expect(try CompletionRequest(body: ByteBuffer(string: #"{"model":7}"#)).model == nil)
    }

    @Test func aBodyThatIsNotAnObjectIsRefused() {
        for body in ["{nope", "[1,2]", "", #""model""#, #"{"model":"m""#] {
            #expect(throws: GatewayError.self, "\(body)") { try CompletionRequest(body: ByteBuffer(string: body)) }
        }
    }

    @Test func defaultsAreWrittenBeforeTheBodyAsSentAndNeverOverrideTheClient() throws {
        let defaults = SamplingDefaults(temperature: 0.3, topP: nil, topK: 7)
        let sampling: [GatewayRoute.Sampling] = [.temperature, .topP, .topK]
        for (body, expected) in [(#"{}"#, #"{"temperature":0.3,"top_k":7}"#),
                                 (#"  { "model":"m" }"#, #"{"temperature":0.3,"top_k":7, "model":"m" }"#),
                                 (#"{"model":"m","temperature":1.5}"#, #"{"top_k":7,"model":"m","temperature":1.5}"#)] {
            var request = try CompletionRequest(body: ByteBuffer(string: body))
            request.inject(defaults, only: sampling)
            let forwarded = String(buffer: request.forwarded(as: "m").body)
            #expect(forwarded == expected)
            #expect((try? JSONSerialization.jsonObject(with: Data(forwarded.utf8))) != nil, "still JSON: \(forwarded)")
        }
    }
}
