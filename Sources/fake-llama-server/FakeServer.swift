import Foundation
import Hummingbird
import NIOCore
import Synchronization

/// Counters the fake keeps, shown at `GET /fake/stats` so tests can see what reached it.
final class FakeStats: Sendable {
    struct Counts: Codable {
        var requests = 0
        var active = 0
        var completed = 0
        /// Streams whose client went away before the last token.
        var disconnected = 0
        /// The body of the last completion request, as received.
        var lastRequest = ""
        /// Set by `POST /fake/unhealthy`: `/health` answers 500 from then on (`POST /fake/healthy` clears it).
        var unhealthy = false
        /// Set by `POST /fake/slow-health?seconds=N`: `/health` takes this long to answer (an overloaded server's
        /// HTTP threads), while completions go on as before. `POST /fake/healthy` clears it.
        var healthDelay: Double = 0
        /// Completions whose client left during the prompt delay (`--fake-prompt-delay`).
        var abandoned = 0
        /// Embedding requests answered.
        var embeddings = 0
        /// The path of the last request to one of llama-server's other routes (`/v1/messages`, `/tokenize`, …).
        var lastPath = ""
        /// That request's headers, `name: value`.
        var lastHeaders: [String] = []
        /// Bytes of streamed answers written to their connections so far (a write that blocks because the
        /// client does not read has not counted yet).
        var streamedBytes = 0
    }

    private let counts = Mutex(Counts())

    func update<T: Sendable>(_ body: (inout sending Counts) -> sending T) -> T { counts.withLock(body) }
    var snapshot: Counts { counts.withLock { $0 } }
}

/// Speaks the part of llama-server's HTTP API that fleet uses.
struct FakeServer {
    let options: FakeOptions
    let started = ContinuousClock.now
    let stats = FakeStats()
    /// The prompts its slots and host cache hold, as llama-server's `--parallel` slots plus two.
    let cache: FakePromptCache

    init(options: FakeOptions) {
        self.options = options
        self.cache = FakePromptCache(capacity: options.slots + 2)
    }

    func routes() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/health") { _, _ -> Response in
            let delay = stats.snapshot.healthDelay
            if delay > 0 { try await Task.sleep(for: .milliseconds(Int64(delay * 1000))) }
            let age = ContinuousClock.now - started
            if age < options.loadingDelay {
                return jsonResponse(#"{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}"#,
                                    status: .serviceUnavailable)
            }
            if stats.snapshot.unhealthy || options.unhealthyAfter.map({ age >= $0 }) == true {
                return jsonResponse(#"{"error":{"code":500,"message":"fake: unhealthy on cue","type":"server_error"}}"#,
                                    status: .internalServerError)
            }
            return jsonResponse(#"{"status":"ok"}"#)
        }
        router.get("/v1/models") { _, _ in
            jsonResponse(#"{"object":"list","data":[{"id":"\#(options.alias)","object":"model","owned_by":"llamacpp","created":0}]}"#)
        }
        router.get("/props") { _, _ in
            jsonResponse(#"{"total_slots":\#(options.slots),"model_path":"fake.gguf","default_generation_settings":{"n_ctx":4096}}"#)
        }
        router.get("/slots") { _, _ in
            let active = stats.snapshot.active
            let slots = (0..<options.slots).map { #"{"id":\#($0),"is_processing":\#($0 < active)}"# }
            return jsonResponse("[" + slots.joined(separator: ",") + "]")
        }
        router.post("/fake/unhealthy") { _, _ in
            stats.update { $0.unhealthy = true }
            return jsonResponse(#"{"unhealthy":true}"#)
        }
        router.post("/fake/slow-health") { request, _ in
            let seconds = request.uri.queryParameters["seconds"].flatMap { Double(String($0)) } ?? 5
            stats.update { $0.healthDelay = seconds }
            return jsonResponse(#"{"healthDelay":\#(seconds)}"#)
        }
        router.post("/fake/healthy") { _, _ in
            stats.update {
                $0.unhealthy = false
                $0.healthDelay = 0
            }
            return jsonResponse(#"{"unhealthy":false}"#)
        }
        // The names of the environment variables the process got (never their values).
        router.get("/fake/env") { _, _ in
            let names = ProcessInfo.processInfo.environment.keys.sorted()
            let data = (try? JSONSerialization.data(withJSONObject: names)) ?? Data()
            return jsonResponse(String(decoding: data, as: UTF8.self))
        }
        router.post("/v1/embeddings") { request, _ in
            let body = try await request.body.collect(upTo: 16 << 20)
            stats.update {
                $0.embeddings += 1
                $0.lastRequest = String(buffer: body)
            }
            if let status = options.completionStatus {
                return jsonResponse(#"{"error":{"code":\#(status),"message":"fake: failing on cue","type":"server_error"}}"#,
                                    status: .init(code: status))
            }
            try await Task.sleep(for: options.promptDelay)
            return jsonResponse(#"{"object":"list","model":"\#(options.alias)","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2,0.3]}],"usage":{"prompt_tokens":2,"total_tokens":2}}"#)
        }
        router.get("/fake/cache") { _, _ in
            jsonResponse(cache.json)
        }
        router.get("/fake/stats") { _, _ in
            let data = (try? JSONEncoder().encode(stats.snapshot)) ?? Data()
            return jsonResponse(String(decoding: data, as: UTF8.self))
        }
        router.post("/v1/chat/completions") { request, context in
            try await complete(request, context: context, chat: true)
        }
        router.post("/v1/completions") { request, context in
            try await complete(request, context: context, chat: false)
        }
        addOtherRoutes(to: router)
        return router
    }

    private func complete(_ request: Request, context: BasicRequestContext, chat: Bool) async throws -> Response {
        guard options.promptDelay > .zero || options.promptTokenDelay > .zero else {
            let body = try await request.body.collect(upTo: 16 << 20)
            return try await complete(body, prompt: prompt(in: body, chat: chat), chat: chat)
        }
        // Prompt processing: nothing is sent, so only the connection closing says the client left.
        let body: ByteBuffer
        let prompt: (text: String, figures: PromptFigures)
        do {
            (body, prompt) = try await request.body.consumeWithCancellationOnInboundClose { body in
                var whole = ByteBuffer()
                for try await var part in body { whole.writeBuffer(&part) }
                let prompt = self.prompt(in: whole, chat: chat)
                try await Task.sleep(for: options.promptDelay + options.promptTokenDelay * prompt.figures.promptN)
                return (whole, prompt)
            }
        } catch {
            stats.update { $0.abandoned += 1 }
            throw error
        }
        return try await complete(body, prompt: prompt, chat: chat)
    }

    /// llama-server's `timings` object: prompt tokens from the cache (`cache_n`) and processed (`prompt_n`),
    /// tokens generated (`predicted_n`), with the times the fake's delays stand for.
    private func timingsJSON(_ figures: PromptFigures, predicted: Int) -> String {
        func milliseconds(_ duration: Duration) -> Double {
            Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
        }
        let promptMs = milliseconds(options.promptDelay + options.promptTokenDelay * figures.promptN)
        let predictedMs = milliseconds(options.tokenDelay * predicted)
        return #"{"cache_n":\#(figures.cacheN),"prompt_n":\#(figures.promptN),"prompt_ms":\#(promptMs),"predicted_n":\#(predicted),"predicted_ms":\#(predictedMs)}"#
    }

    /// The request's prompt text and what the prompt cache holds of it.
    func prompt(in body: ByteBuffer, chat: Bool) -> (text: String, figures: PromptFigures) {
        let json = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:]
        let text = FakePromptCache.promptText(of: json, chat: chat)
        return (text, cache.figures(for: text))
    }

    private func complete(_ body: ByteBuffer, prompt: (text: String, figures: PromptFigures), chat: Bool) async throws -> Response {
        stats.update { $0.lastRequest = String(buffer: body) }
        if let status = options.completionStatus {
            stats.update { $0.requests += 1 }
            return jsonResponse(#"{"error":{"code":\#(status),"message":"fake: failing on cue","type":"server_error"}}"#,
                                status: .init(code: status))
        }
        let json = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:]
        let stream = json["stream"] as? Bool ?? false
        if chat, let tools = json["tools"] as? [[String: Any]], let function = tools.first?["function"] as? [String: Any],
           let name = function["name"] as? String {
            stats.update { $0.requests += 1; $0.completed += 1 }
            return toolCall(name: name, stream: stream, model: options.alias)
        }
        let maxTokens = json["max_tokens"] as? Int ?? options.tokens
        let tokens = min(options.tokens, maxTokens)
        let number = stats.update { counts -> Int in
            counts.requests += 1
            counts.active += 1
            return counts.requests
        }
        let id = "fake-\(number)"
        // The slot now holds the prompt and the answer, which the conversation's next turn resends.
        let streamedText = (0..<tokens).map { "tok\($0) " }.joined()
        let wholeText = (0..<tokens).map { "tok\($0)" }.joined(separator: " ")
        let answer = stream ? streamedText : wholeText
        cache.record(prompt.text + (chat ? FakePromptCache.assistantTurn(answer) : answer), figures: prompt.figures)
        let timings = timingsJSON(prompt.figures, predicted: tokens)
        let finish: @Sendable (Bool) -> Void = { clean in
            stats.update { counts in
                counts.active -= 1
                if clean { counts.completed += 1 } else { counts.disconnected += 1 }
            }
            if let crashAfter = options.crashAfter, number >= crashAfter {
                // After the answer went out: the crash is the next thing the client sees, not a lost answer.
                FileHandle.standardError.write(Data("fake: crashing on cue after \(number) requests\n".utf8))
                Task {
                    try? await Task.sleep(for: .milliseconds(100))
                    exit(3)
                }
            }
        }
        if !stream {
            try await Task.sleep(for: options.tokenDelay * tokens)
            let choice = chat
                ? #"{"index":0,"finish_reason":"length","message":{"role":"assistant","content":"\#(wholeText)"}}"#
                : #"{"index":0,"finish_reason":"length","text":"\#(wholeText)"}"#
            let figures = prompt.figures
            let usage = #"{"prompt_tokens":\#(figures.total),"completion_tokens":\#(tokens),"total_tokens":\#(figures.total + tokens),"prompt_tokens_details":{"cached_tokens":\#(figures.cacheN)}}"#
            let body = #"{"id":"\#(id)","object":"\#(chat ? "chat.completion" : "text_completion")","created":0,"model":"\#(options.alias)","choices":[\#(choice)],"usage":\#(usage),"timings":\#(timings)}"#
            return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody { [dieMidBody = options.dieMidBody] writer in
                if dieMidBody {
                    try await writer.write(ByteBuffer(string: String(body.prefix(body.count / 2))))
                    try await Task.sleep(for: .milliseconds(100))
                    FileHandle.standardError.write(Data("fake: dying in the middle of the body on cue\n".utf8))
                    exit(5)
                }
                try await writer.write(ByteBuffer(string: body))
                try await writer.finish(nil)
                finish(true)
            })
        }
        let object = chat ? "chat.completion.chunk" : "text_completion"
        let delay = options.tokenDelay
        let alias = options.alias
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: ResponseBody { [dieAfterHead = options.dieAfterHead, tokenBytes = options.tokenBytes,
                                  lingerAfterDone = options.lingerAfterDone] writer in
                if dieAfterHead {
                    // The head is out; the process dies before the first byte of the body.
                    try await Task.sleep(for: .milliseconds(100))
                    FileHandle.standardError.write(Data("fake: dying after the head on cue\n".utf8))
                    exit(4)
                }
                var clean = false
                defer { finish(clean) }
                for index in 0..<tokens {
                    try await Task.sleep(for: delay)
                    var piece = "tok\(index) "
                    if tokenBytes > piece.utf8.count { piece += String(repeating: "x", count: tokenBytes - piece.utf8.count) }
                    let delta = chat ? #"{"index":0,"finish_reason":null,"delta":{"content":"\#(piece)"}}"#
                                     : #"{"index":0,"finish_reason":null,"text":"\#(piece)"}"#
                    let event = ByteBuffer(string: #"data: {"id":"\#(id)","object":"\#(object)","created":0,"model":"\#(alias)","choices":[\#(delta)]}"# + "\n\n")
                    try await writer.write(event)
                    stats.update { $0.streamedBytes += event.readableBytes }
                }
                let last = chat ? #"{"index":0,"finish_reason":"length","delta":{}}"# : #"{"index":0,"finish_reason":"length","text":""}"#
                try await writer.write(ByteBuffer(string: #"data: {"id":"\#(id)","object":"\#(object)","created":0,"model":"\#(alias)","choices":[\#(last)],"timings":\#(timings)}"# + "\n\n"))
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                if lingerAfterDone > .zero { try await Task.sleep(for: lingerAfterDone) }
                clean = true
                try await writer.finish(nil)
            })
    }
}

/// A request with `tools` is answered with a call to its first tool, as llama-server's chat parser sends one:
/// whole in `message.tool_calls`, or streamed as `delta.tool_calls` whose arguments come in pieces.
func toolCall(name: String, stream: Bool, model: String) -> Response {
    let arguments = #"{\"city\":\"Paris\"}"#
    guard stream else {
        return jsonResponse(#"{"id":"fake-tool","object":"chat.completion","created":0,"model":"\#(model)","choices":[{"index":0,"finish_reason":"tool_calls","message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"\#(name)","arguments":"\#(arguments)"}}]}}],"usage":{"prompt_tokens":20,"completion_tokens":9,"total_tokens":29}}"#)
    }
    func chunk(_ delta: String, finish: String = "null") -> String {
        #"data: {"id":"fake-tool","object":"chat.completion.chunk","created":0,"model":"\#(model)","choices":[{"index":0,"finish_reason":\#(finish),"delta":\#(delta)}]}"# + "\n\n"
    }
    let pieces = [#"{\"ci"#, #"ty\":\"Pa"#, #"ris\"}"#]
    var events = [chunk(#"{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"\#(name)","arguments":""}}]}"#)]
    events += pieces.map { chunk(#"{"tool_calls":[{"index":0,"function":{"arguments":"\#($0)"}}]}"#) }
    events.append(chunk("{}", finish: #""tool_calls""#))
    events.append("data: [DONE]\n\n")
    return Response(status: .ok, headers: [.contentType: "text/event-stream"], body: ResponseBody { [events] writer in
        for event in events {
            try await writer.write(ByteBuffer(string: event))
            try await Task.sleep(for: .milliseconds(5))
        }
        try await writer.finish(nil)
    })
}

func jsonResponse(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
    Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
}
