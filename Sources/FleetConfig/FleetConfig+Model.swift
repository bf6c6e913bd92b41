import Foundation

extension FleetConfig {
    static func readModel(name: String, value: JSONValue, baseDirectory: String,
                                  reader: inout ConfigReader) -> ModelConfig? {
        let path = "models.\(name)"
        if !Self.isValidName(name) {
            reader.report(path, "\"\(name)\" is not a usable model name",
                          fix: "use letters, digits and . _ - : (no spaces or slashes)")
        }
        guard let object = reader.object(value, at: path, allowed: modelKeys) else { return nil }
        // A model served only by unmanaged endpoints needs no GGUF of its own.
        let remoteOnly = object["path"] == nil && (object["endpoints"] != nil || object["discover"] != nil)
        let file = reader.string(object, "path", at: path)
        if file == nil && object["path"] == nil && !remoteOnly {
            reader.report("\(path).path", "is required",
                          fix: "give the GGUF file, relative to fleet.json or absolute (or only \"endpoints\" for remote servers)")
        }
        guard file != nil || remoteOnly else { return nil }
        var model = ModelConfig(name: name, path: file.map { resolve($0, against: baseDirectory) } ?? "")
        model.replicas = reader.int(object, "replicas", at: path, range: 0...64) ?? (remoteOnly ? 0 : 1)
        if remoteOnly && model.replicas > 0 {
            reader.report("\(path).replicas", "needs a \"path\" to run", fix: "add the GGUF \"path\", or remove replicas")
        }
        model.contextSize = reader.int(object, "contextSize", at: path, range: 0...10_000_000)
        model.gpuLayers = reader.int(object, "gpuLayers", at: path, range: -1...10_000)
        model.threads = reader.int(object, "threads", at: path, range: 1...1024)
        model.parallel = reader.int(object, "parallel", at: path, range: 1...1024)
        model.batchSize = reader.int(object, "batchSize", at: path, range: 1...1_000_000)
        switch object["flashAttention"] {
        case nil, .null?: break
        case .bool(let flag)?: model.flashAttention = flag ? .on : .off
        case .string(let text)? where FlashAttention(rawValue: text) != nil: model.flashAttention = FlashAttention(rawValue: text)
        case let other?:
            reader.report("\(path).flashAttention", "expected true, false, \"on\", \"off\" or \"auto\", found \(other.typeName)",
                          fix: "use true, false or \"auto\"")
        }
        model.args = reader.stringArray(object, "args", at: path,
                                        hint: "give each argument as its own string: [\"--seed\", \"42\"]") ?? []
        if case .string? = object["args"] {
            // A shell string would be split wrongly: say so precisely rather than only "wrong type".
            reader.report("\(path).args", "is a single string; arguments are never parsed by a shell",
                          fix: "split it into an array: \"--seed 42\" becomes [\"--seed\", \"42\"]")
        }
        for flag in model.args where ["--port", "--host", "-m", "--model"].contains(flag) {
            reader.report("\(path).args", "sets \(flag), which fleet sets itself",
                          fix: flag.contains("m") ? "use the model's \"path\" key" : "remove it; use portRange for ports")
        }
        model.env = reader.stringMap(object, "env", at: path) ?? [:]
        model.aliases = reader.stringArray(object, "aliases", at: path, hint: "write it as [\"alias\", ...]") ?? []
        for alias in model.aliases where !isValidName(alias) {
            reader.report("\(path).aliases", "\"\(alias)\" is not a usable name",
                          fix: "use letters, digits and . _ - : (no spaces or slashes)")
        }
        if let value = object["defaults"], let defaults = reader.object(value, at: "\(path).defaults", allowed: defaultsKeys) {
            let dpath = "\(path).defaults"
            model.defaults.temperature = reader.double(defaults, "temperature", at: dpath, range: 0...10)
            model.defaults.topP = reader.double(defaults, "top_p", at: dpath, range: 0...1)
            model.defaults.topK = reader.int(defaults, "top_k", at: dpath, range: 0...100_000)
        }
        if let text = reader.string(object, "policy", at: path) {
            if let policy = SchedulingPolicy(rawValue: text) {
                model.policy = policy
            } else {
                reader.report("\(path).policy", "\"\(text)\" is not a policy",
                              fix: "use one of: " + SchedulingPolicy.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))
            }
        }
        if let value = object["prefixRouting"],
           let prefix = reader.object(value, at: "\(path).prefixRouting", allowed: prefixRoutingKeys) {
            let ppath = "\(path).prefixRouting"
            var settings = model.prefixRouting
            settings.rememberBlocks = reader.int(prefix, "rememberBlocks", at: ppath, range: 16...10_000_000) ?? settings.rememberBlocks
            settings.maxImbalance = reader.int(prefix, "maxImbalance", at: ppath, range: 0...1_000) ?? settings.maxImbalance
            settings.rememberSessions = reader.int(prefix, "rememberSessions", at: ppath, range: 0...10_000_000) ?? settings.rememberSessions
            settings.maxWait = reader.duration(prefix, "maxWait", at: ppath) ?? settings.maxWait
            model.prefixRouting = settings
        }
        if let value = object["queue"], let queue = reader.object(value, at: "\(path).queue", allowed: queueKeys) {
            model.queue.maxSize = reader.int(queue, "maxSize", at: "\(path).queue", range: 0...1_000_000) ?? model.queue.maxSize
            model.queue.timeout = reader.duration(queue, "timeout", at: "\(path).queue") ?? model.queue.timeout
        }
        if let start = reader.string(object, "start", at: path) {
            switch start {
            case "always": model.startOnDemand = false
            case "onDemand": model.startOnDemand = true
            default: reader.report("\(path).start", "\"\(start)\" is not a start mode", fix: "use \"always\" or \"onDemand\"")
            }
        }
        model.idleTimeout = reader.duration(object, "idleTimeout", at: path, minimum: .seconds(1))
        model.memory = reader.size(object, "memory", at: path)
        model.isDefault = reader.bool(object, "default", at: path) ?? false
        var endpoints: [JSONValue] = []
        if let value = object["endpoints"] { endpoints = Self.array(value, at: "\(path).endpoints", reader: &reader) }
        for (index, entry) in endpoints.enumerated() {
            guard let remote = remoteServer(entry, at: "\(path).endpoints[\(index)]", reader: &reader) else { continue }
            model.endpoints.append(remote.url)
            if let key = remote.apiKey { model.endpointKeys[remote.url] = key }
        }
        model.discover = discoverySources(object, at: path, reader: &reader)
        return model
    }
}
