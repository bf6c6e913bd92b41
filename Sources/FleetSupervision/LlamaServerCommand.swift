public import FleetConfig
/// The command line for one llama-server instance of a model. Always binds 127.0.0.1: instances are reached
/// through the controller, never directly from the network.
public struct LlamaServerCommand: Sendable, Equatable {
    public var executable: String
    public var arguments: [String]
    public var environment: [String: String]

    public init(executable: String, model: ModelConfig, port: Int) {
        self.executable = executable
        var args = ["--model", model.path, "--host", "127.0.0.1", "--port", String(port), "--alias", model.name]
        if let value = model.contextSize { args += ["--ctx-size", String(value)] }
        if let value = model.gpuLayers { args += ["--n-gpu-layers", value < 0 ? "auto" : String(value)] }
        if let value = model.threads { args += ["--threads", String(value)] }
        if let value = model.parallel { args += ["--parallel", String(value)] }
        if let value = model.batchSize { args += ["--batch-size", String(value)] }
        if let value = model.flashAttention { args += ["--flash-attn", value.rawValue] }
        self.arguments = args + model.args
        self.environment = model.env
    }

    /// The command as a shell would show it, for logs and error messages.
    public var display: String {
        ([executable] + arguments).map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
    }
}
