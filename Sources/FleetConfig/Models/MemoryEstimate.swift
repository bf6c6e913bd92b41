/// What one instance of a model is expected to take in memory, for `memoryBudget`: the GGUF's weights (mapped
/// whole), the KV cache for its context at f16, and llama-server's compute buffers and runtime. An estimate on
/// the safe side (sliding-window layers are counted at full context); a model's `memory` key replaces it.
public struct MemoryEstimate: Sendable, Equatable {
    public var weights: Int
    public var kvCache: Int
    public var overhead: Int
    /// The context the KV cache was sized for.
    public var contextSize: Int

    public var total: Int { weights + kvCache + overhead }

    /// Fixed runtime and compute-buffer allowance: measured ~65 MB above weights + KV for gemma-3-270m at
    /// `--ctx-size 1024` on llama-server 11434 (RSS), rounded up; plus 5 % of the weights for larger models'
    /// larger graphs.
    static let baseOverhead = 96 << 20

    /// The context llama-server uses when `contextSize` is not set and the header does not say.
    static let fallbackContext = 4096

    public init(metadata: GGUFMetadata, contextSize: Int?) {
        weights = metadata.fileSize
        let context = contextSize ?? metadata.contextLength ?? Self.fallbackContext
        self.contextSize = context
        // Without the shapes, a KV cache of a quarter of the weights stands in (about right for 7B at 8k).
        kvCache = metadata.kvBytesPerToken.map { $0 * context } ?? metadata.fileSize / 4
        overhead = Self.baseOverhead + metadata.fileSize / 20
    }

    /// One instance's cost in bytes: the model's `memory` when set, else the estimate from its GGUF; nil when
    /// neither is available (the file cannot be read).
    public static func bytes(for model: ModelConfig) -> Int? {
        if let memory = model.memory { return memory }
        guard let metadata = try? GGUFMetadata.read(path: model.path) else { return nil }
        return MemoryEstimate(metadata: metadata, contextSize: model.contextSize).total
    }
}

