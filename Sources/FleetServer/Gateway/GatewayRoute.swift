import FleetRouting

/// One route the gateway forwards to an instance of the model a request names: the same path on the instance.
/// The table is every llama-server route a client of a local model uses (the pinned build serves them all).
struct GatewayRoute: Sendable {
    /// Whose clients call it: decides the shape of the gateway's own errors.
    enum Family: Sendable, Equatable {
        /// `{"error":{"message","type","param","code"}}`.
        case openAI
        /// `{"type":"error","error":{"type","message"}}`.
        case anthropic
    }

    /// A sampling default fleet.json may set.
    enum Sampling: Sendable, Equatable {
        case temperature, topP, topK
    }

    let path: String
    let family: Family
    /// The fields that make its prompt, for `prefixAware`; nil: no prompt worth routing by.
    let prompt: PromptFingerprint.Shape?
    /// The model's sampling defaults this route takes (never injected into routes that do not).
    let sampling: [Sampling]
    /// llama-server's native routes take no `model`: it may come from `?model=`, `X-Fleet-Model` or the default.
    let modelOptional: Bool

    private static let all3: [Sampling] = [.temperature, .topP, .topK]

    static let table: [GatewayRoute] = [
        GatewayRoute(path: "/v1/chat/completions", family: .openAI, prompt: .chat, sampling: all3, modelOptional: false),
        GatewayRoute(path: "/v1/completions", family: .openAI, prompt: .completion, sampling: all3, modelOptional: false),
        GatewayRoute(path: "/v1/embeddings", family: .openAI, prompt: nil, sampling: [], modelOptional: false),
        GatewayRoute(path: "/v1/messages", family: .anthropic, prompt: .anthropic, sampling: all3, modelOptional: false),
        GatewayRoute(path: "/v1/messages/count_tokens", family: .anthropic, prompt: nil, sampling: [], modelOptional: false),
        GatewayRoute(path: "/v1/responses", family: .openAI, prompt: .responses, sampling: [.temperature, .topP],
                     modelOptional: false),
        GatewayRoute(path: "/v1/chat/completions/input_tokens", family: .openAI, prompt: nil, sampling: [], modelOptional: false),
        GatewayRoute(path: "/v1/responses/input_tokens", family: .openAI, prompt: nil, sampling: [], modelOptional: false),
        GatewayRoute(path: "/v1/rerank", family: .openAI, prompt: nil, sampling: [], modelOptional: true),
        GatewayRoute(path: "/v1/reranking", family: .openAI, prompt: nil, sampling: [], modelOptional: true),
        GatewayRoute(path: "/rerank", family: .openAI, prompt: nil, sampling: [], modelOptional: true),
        GatewayRoute(path: "/completion", family: .openAI, prompt: .completion, sampling: all3, modelOptional: true),
        GatewayRoute(path: "/infill", family: .openAI, prompt: nil, sampling: all3, modelOptional: true),
        GatewayRoute(path: "/tokenize", family: .openAI, prompt: nil, sampling: [], modelOptional: true),
        GatewayRoute(path: "/detokenize", family: .openAI, prompt: nil, sampling: [], modelOptional: true),
        GatewayRoute(path: "/apply-template", family: .openAI, prompt: nil, sampling: [], modelOptional: true),
    ]

    /// The family of any path the controller answers: Anthropic's for `/v1/messages…`, OpenAI's elsewhere.
    static func family(of path: String) -> Family {
        path == "/v1/messages" || path.hasPrefix("/v1/messages/") ? .anthropic : .openAI
    }
}
