import Foundation

/// The environment variables of the llama.cpp provider fleet grew out of (`LLAMACPP_*`), read once: what its
/// users set expects to work the same here.
///
/// - `LLAMACPP_ENABLED=false` (or `0`, `no`, `off`): `fleet up` refuses to start anything.
/// - `LLAMACPP_MODEL_PATH`: the GGUF a zero-config `fleet up` runs (without a fleet.json or `--model`).
/// - `LLAMACPP_API_URL`: an already-running llama-server that joins the zero-config model's pool as an
///   unmanaged endpoint (beside the GGUF fleet runs, if there is one).
/// - `LLAMACPP_CONTEXT_SIZE`, `LLAMACPP_GPU_LAYERS`: the context and GPU layers of the zero-config model, and of
///   every fleet.json model that does not set `contextSize` / `gpuLayers` itself (fleet.json wins).
/// - `LLAMACPP_EXECUTABLE`: the llama-server to run (see `LlamaServerLocator`).
public struct ProviderEnvironment: Sendable, Equatable {
    public var enabled = true
    public var modelPath: String?
    public var apiURL: String?
    public var contextSize: Int?
    public var gpuLayers: Int?
    /// Values that could not be used, as problems to report (the variable, what is wrong, the fix).
    public var problems: [ConfigIssue] = []

    /// What the provider ran a model with when nothing said otherwise: a 4096-token context (not the model's
    /// trained one, which can need several times the memory), every layer on the GPU where the build has one,
    /// batches of 512.
    public static let zeroConfigContextSize = 4096
    public static let zeroConfigGPULayers = 999
    public static let zeroConfigBatchSize = 512

    /// This process's environment.
    public init() {
        self.init(ProcessInfo.processInfo.environment)
    }

    public init(_ environment: [String: String]) {
        func value(_ name: String) -> String? {
            guard let text = environment[name]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
            return text
        }
        if let text = value("LLAMACPP_ENABLED") {
            switch text.lowercased() {
            case "false", "0", "no", "off": enabled = false
            case "true", "1", "yes", "on": enabled = true
            default:
                problems.append(ConfigIssue(path: "LLAMACPP_ENABLED", message: "\"\(text)\" is not true or false",
                                            fix: "set it to true or false, or unset it"))
            }
        }
        modelPath = value("LLAMACPP_MODEL_PATH")
        if let url = value("LLAMACPP_API_URL") {
            if let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil {
                apiURL = url.hasSuffix("/") ? String(url.dropLast()) : url
            } else {
                problems.append(ConfigIssue(path: "LLAMACPP_API_URL", message: "\"\(url)\" is not a server address",
                                            fix: "write it like http://127.0.0.1:8080"))
            }
        }
        func count(_ name: String, _ range: ClosedRange<Int>) -> Int? {
            guard let text = value(name) else { return nil }
            guard let number = Int(text), range.contains(number) else {
                problems.append(ConfigIssue(path: name, message: "\"\(text)\" is not a whole number in \(range.lowerBound)...\(range.upperBound)",
                                            fix: "set a number such as \(name == "LLAMACPP_CONTEXT_SIZE" ? "4096" : "99"), or unset it"))
                return nil
            }
            return number
        }
        contextSize = count("LLAMACPP_CONTEXT_SIZE", 0...10_000_000)
        gpuLayers = count("LLAMACPP_GPU_LAYERS", -1...10_000)
    }

    /// Fills in the settings fleet.json left unset from `LLAMACPP_CONTEXT_SIZE` / `LLAMACPP_GPU_LAYERS`.
    public func applyDefaults(to model: inout ModelConfig) {
        if model.contextSize == nil { model.contextSize = contextSize }
        if model.gpuLayers == nil { model.gpuLayers = gpuLayers }
    }

    /// The zero-config model as the provider ran it: its defaults, the environment's values over them.
    public func zeroConfig(_ model: inout ModelConfig) {
        model.contextSize = contextSize ?? Self.zeroConfigContextSize
        model.gpuLayers = gpuLayers ?? Self.zeroConfigGPULayers
        model.batchSize = Self.zeroConfigBatchSize
        if let apiURL { model.endpoints = [apiURL] }
    }

    /// The `LLAMACPP_*` variables that are set, for messages.
    public var described: [String] {
        var set: [String] = []
        if !enabled { set.append("LLAMACPP_ENABLED=false") }
        if let modelPath { set.append("LLAMACPP_MODEL_PATH=\(modelPath)") }
        if let apiURL { set.append("LLAMACPP_API_URL=\(apiURL)") }
        if let contextSize { set.append("LLAMACPP_CONTEXT_SIZE=\(contextSize)") }
        if let gpuLayers { set.append("LLAMACPP_GPU_LAYERS=\(gpuLayers)") }
        return set
    }
}
