public import Foundation

extension FleetConfig {
    /// A one-model fleet for `fleet up --model PATH.gguf` (or `LLAMACPP_MODEL_PATH`): one replica, defaults
    /// everywhere, state under `./.fleet`, named after the file.
    /// - Throws: `ConfigError` when the file is missing or not GGUF.
    public static func singleModel(path: String, workingDirectory: String = FileManager.default.currentDirectoryPath,
                                   environment: ProviderEnvironment = ProviderEnvironment()) throws(ConfigError) -> FleetConfig {
        let absolute = resolve(path, against: workingDirectory)
        var name = URL(fileURLWithPath: absolute).deletingPathExtension().lastPathComponent
        if !isValidName(name) { name = "default" }
        let source = "--model \(path)"
        if let problem = GGUFFile.problem(at: absolute) {
            throw ConfigError(file: source, issues: [ConfigIssue(path: "", message: problem.message, fix: problem.fix)])
        }
        var model = ModelConfig(name: name, path: absolute)
        environment.zeroConfig(&model)
        return FleetConfig(source: source, stateDirectory: resolve(".fleet", against: workingDirectory), models: [model])
    }

    /// A zero-config fleet from the environment alone: the GGUF of `LLAMACPP_MODEL_PATH`, and the running
    /// llama-server of `LLAMACPP_API_URL` in the same pool (either may be missing, not both). A fleet of only
    /// the running server serves it as model `default`. Nil when neither is set.
    /// - Throws: `ConfigError` when `LLAMACPP_MODEL_PATH` is not a GGUF file.
    public static func fromEnvironment(_ environment: ProviderEnvironment,
                                       workingDirectory: String = FileManager.default.currentDirectoryPath)
        throws(ConfigError) -> FleetConfig? {
        if let path = environment.modelPath {
            var config = try singleModel(path: path, workingDirectory: workingDirectory, environment: environment)
            config.source = "LLAMACPP_MODEL_PATH=\(path)" + (environment.apiURL.map { " and LLAMACPP_API_URL=\($0)" } ?? "")
            return config
        }
        guard let url = environment.apiURL else { return nil }
        var model = ModelConfig(name: "default", path: "")
        model.replicas = 0
        model.endpoints = [url]
        return FleetConfig(source: "LLAMACPP_API_URL=\(url)", stateDirectory: resolve(".fleet", against: workingDirectory),
                           models: [model])
    }
}
