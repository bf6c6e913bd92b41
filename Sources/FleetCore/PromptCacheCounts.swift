/// llama-server's own prompt-cache figures, summed over answers that reported them (`timings.cache_n` and
/// `prompt_n`, or `usage.prompt_tokens_details.cached_tokens`): how much of the prompts a replica (or a model)
/// found in its cache. Whether cache-aware routing works shows here.
public struct PromptCacheCounts: Sendable, Equatable, Codable {
    /// Prompt tokens in total (cached and evaluated).
    public var promptTokens = 0
    /// Of those, the tokens llama-server reused from its cache instead of evaluating.
    public var cachedTokens = 0

    public init(promptTokens: Int = 0, cachedTokens: Int = 0) {
        self.promptTokens = promptTokens
        self.cachedTokens = cachedTokens
    }

    /// cached / prompt tokens, nil before any answer reported them.
    public var hitRatio: Double? {
        promptTokens > 0 ? Double(cachedTokens) / Double(promptTokens) : nil
    }

    public static func += (total: inout PromptCacheCounts, more: PromptCacheCounts) {
        total.promptTokens += more.promptTokens
        total.cachedTokens += more.cachedTokens
    }

    private enum CodingKeys: String, CodingKey { case promptTokens, cachedTokens, hitRatio }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        promptTokens = try container.decodeIfPresent(Int.self, forKey: .promptTokens) ?? 0
        cachedTokens = try container.decodeIfPresent(Int.self, forKey: .cachedTokens) ?? 0
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(promptTokens, forKey: .promptTokens)
        try container.encode(cachedTokens, forKey: .cachedTokens)
        // Three decimals: what a reader (and a dashboard) needs.
        try container.encodeIfPresent(hitRatio.map { ($0 * 1000).rounded() / 1000 }, forKey: .hitRatio)
    }
}
