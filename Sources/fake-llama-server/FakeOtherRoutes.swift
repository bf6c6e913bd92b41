import Foundation
import Hummingbird
import NIOCore

/// llama-server's routes besides chat and completions, as the pinned build answers them, in each family's shape:
/// Anthropic's Messages (streamed as `event:` + `data:` pairs), OpenAI's Responses, rerank, and llama-server's
/// native `/completion`, `/infill`, `/tokenize`, `/detokenize`, `/apply-template`, token counting. Each answers
/// with the model's alias, honours `--fake-completion-status`, `--fake-prompt-delay` and `--fake-token-delay`,
/// and records its path and body for `/fake/stats`.
extension FakeServer {
    func addOtherRoutes(to router: Router<BasicRequestContext>) {
        let paths = ["/v1/messages", "/v1/messages/count_tokens", "/v1/responses", "/v1/chat/completions/input_tokens",
                     "/v1/responses/input_tokens", "/v1/rerank", "/v1/reranking", "/rerank", "/completion", "/infill",
                     "/tokenize", "/detokenize", "/apply-template"]
        for path in paths {
            router.post(RouterPath(stringLiteral: path)) { request, _ in
                let headers = request.headers.map { "\($0.name.canonicalName): \($0.value)" }
                stats.update { $0.lastHeaders = headers }
                return try await answer(path, body: try await request.body.collect(upTo: 16 << 20))
            }
        }
    }

    private func answer(_ path: String, body: ByteBuffer) async throws -> Response {
        stats.update {
            $0.requests += 1
            $0.lastPath = path
            $0.lastRequest = String(buffer: body)
        }
        if let status = options.completionStatus {
            return jsonResponse(#"{"error":{"code":\#(status),"message":"fake: failing on cue","type":"server_error"}}"#,
                                status: .init(code: status))
        }
        let json = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:]
        let prompt = prompt(in: body, chat: json["messages"] != nil)
        try await Task.sleep(for: options.promptDelay)
        let alias = options.alias
        let stream = json["stream"] as? Bool ?? false
        let tokens = min(options.tokens, json["max_tokens"] as? Int ?? json["n_predict"] as? Int ?? options.tokens)
        let text = (0..<tokens).map { "tok\($0)" }.joined(separator: " ")
        let cached = prompt.figures.cacheN, uncached = prompt.figures.promptN
        switch path {
        case "/v1/messages" where stream:
            var events = [("message_start", #"{"type":"message_start","message":{"id":"msg_fake","type":"message","role":"assistant","content":[],"model":"\#(alias)","stop_reason":null,"usage":{"cache_read_input_tokens":\#(cached),"input_tokens":\#(uncached),"output_tokens":1}}}"#),
                          ("content_block_start", #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#)]
            events += (0..<tokens).map { ("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"tok\#($0) "}}"#) }
            events += [("content_block_stop", #"{"type":"content_block_stop","index":0}"#),
                       ("message_delta", #"{"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"output_tokens":\#(tokens)}}"#),
                       ("message_stop", #"{"type":"message_stop"}"#)]
            return sse(events.map { "event: \($0.0)\ndata: \($0.1)\n\n" })
        case "/v1/messages":
            return jsonResponse(#"{"id":"msg_fake","type":"message","role":"assistant","content":[{"type":"text","text":"\#(text)"}],"model":"\#(alias)","stop_reason":"max_tokens","stop_sequence":null,"usage":{"cache_read_input_tokens":\#(cached),"input_tokens":\#(uncached),"output_tokens":\#(tokens)}}"#)
        case "/v1/responses" where stream:
            var events = [("response.created", #"{"type":"response.created","response":{"id":"resp_fake","object":"response","model":"\#(alias)","status":"in_progress","output":[]}}"#)]
            events += (0..<tokens).map { ("response.output_text.delta", #"{"type":"response.output_text.delta","item_id":"msg_fake","output_index":0,"content_index":0,"delta":"tok\#($0) "}"#) }
            events.append(("response.completed", #"{"type":"response.completed","response":{"id":"resp_fake","object":"response","model":"\#(alias)","status":"completed","output":[{"type":"message","id":"msg_fake","status":"completed","role":"assistant","content":[{"type":"output_text","annotations":[],"text":"\#(text)"}]}],"usage":{"input_tokens":\#(prompt.figures.total),"output_tokens":\#(tokens),"total_tokens":\#(prompt.figures.total + tokens),"input_tokens_details":{"cached_tokens":\#(cached)}}}}"#))
            return sse(events.map { "event: \($0.0)\ndata: \($0.1)\n\n" })
        case "/v1/responses":
            return jsonResponse(#"{"id":"resp_fake","object":"response","model":"\#(alias)","status":"completed","output":[{"type":"message","id":"msg_fake","status":"completed","role":"assistant","content":[{"type":"output_text","annotations":[],"text":"\#(text)"}]}],"usage":{"input_tokens":\#(prompt.figures.total),"output_tokens":\#(tokens),"total_tokens":\#(prompt.figures.total + tokens),"input_tokens_details":{"cached_tokens":\#(cached)}}}"#)
        case "/v1/messages/count_tokens":
            return jsonResponse(#"{"input_tokens":\#(prompt.figures.total)}"#)
        case "/v1/chat/completions/input_tokens", "/v1/responses/input_tokens":
            return jsonResponse(#"{"input_tokens":\#(prompt.figures.total),"object":"response.input_tokens"}"#)
        case "/v1/rerank", "/v1/reranking", "/rerank":
            let documents = json["documents"] as? [Any] ?? []
            let results = documents.indices.map { #"{"index":\#($0),"relevance_score":\#(1.0 / Double($0 + 1))}"# }
            return jsonResponse(#"{"model":"\#(alias)","object":"list","results":[\#(results.joined(separator: ","))],"usage":{"prompt_tokens":\#(documents.count),"total_tokens":\#(documents.count)}}"#)
        case "/tokenize":
            // One token per Unicode scalar: `/detokenize` turns them back into the same text.
            let content = json["content"] as? String ?? ""
            return jsonResponse(#"{"tokens":[\#(content.unicodeScalars.map { String($0.value) }.joined(separator: ","))]}"#)
        case "/detokenize":
            let scalars = (json["tokens"] as? [Int] ?? []).compactMap { Unicode.Scalar(UInt32(clamping: $0)) }
            let content = String(String.UnicodeScalarView(scalars))
            let encoded = (try? JSONSerialization.data(withJSONObject: ["content": content])).map { String(decoding: $0, as: UTF8.self) }
            return jsonResponse(encoded ?? #"{"content":""}"#)
        case "/apply-template":
            return jsonResponse(#"{"prompt":"\#(prompt.text.count) characters of prompt"}"#)
        default:  // /completion, /infill
            try await Task.sleep(for: options.tokenDelay * tokens)
            return jsonResponse(#"{"index":0,"content":"\#(text)","tokens":[],"id_slot":0,"stop":true,"model":"\#(alias)","tokens_predicted":\#(tokens),"timings":{"cache_n":\#(cached),"prompt_n":\#(uncached),"predicted_n":\#(tokens)}}"#)
        }
    }

    /// Server-sent events, one every `--fake-token-delay`.
    private func sse(_ events: [String]) -> Response {
        let delay = options.tokenDelay
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                        body: ResponseBody { writer in
                            for event in events {
                                try await writer.write(ByteBuffer(string: event))
                                try await Task.sleep(for: delay)
                            }
                            try await writer.finish(nil)
                        })
    }
}
