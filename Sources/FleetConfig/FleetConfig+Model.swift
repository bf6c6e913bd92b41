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

extension FleetConfig {
    static let discoverKeys = ["dns", "port", "srv", "interval", "apiKey", "apiKeyEnv"]

    /// `discover`: `[{"dns": NAME, "port": N}, {"srv": NAME}]`, each with an optional `interval`.
    static func discoverySources(_ object: [String: JSONValue], at path: String, reader: inout ConfigReader) -> [DiscoverySource] {
        guard let value = object["discover"], value != .null else { return [] }
        guard case .array(let entries) = value else {
            reader.report("\(path).discover", "expected an array, found \(value.typeName)",
                          fix: "write it as [{\"dns\": \"llama.models.svc.cluster.local\", \"port\": 8080}] or [{\"srv\": \"_http._tcp.llama.models.svc.cluster.local\"}]")
            return []
        }
        var sources: [DiscoverySource] = []
        for (index, entry) in entries.enumerated() {
            let at = "\(path).discover[\(index)]"
            guard let fields = reader.object(entry, at: at, allowed: discoverKeys) else { continue }
            let dns = reader.string(fields, "dns", at: at), srv = reader.string(fields, "srv", at: at)
            let port = reader.int(fields, "port", at: at, range: 1...65535)
            let interval = reader.duration(fields, "interval", at: at, minimum: .seconds(1)) ?? .seconds(10)
            let apiKey = key(fields, at: at, reader: &reader)
            switch (dns, srv) {
            case (let name?, nil):
                guard let port else {
                    reader.report("\(at).port", "is required with \"dns\"",
                                  fix: "give the port llama-server listens on at those addresses, like \"port\": 8080")
                    continue
                }
                sources.append(DiscoverySource(.addresses(name: name, port: port), interval: interval, apiKey: apiKey))
            case (nil, let name?):
                if fields["port"] != nil {
                    reader.report("\(at).port", "SRV records carry their own ports", fix: "remove \"port\" here")
                }
                sources.append(DiscoverySource(.services(name: name), interval: interval, apiKey: apiKey))
            default:
                reader.report(at, "needs exactly one of \"dns\" and \"srv\"",
                              fix: "write {\"dns\": NAME, \"port\": PORT} (A/AAAA records) or {\"srv\": NAME} (SRV records)")
            }
        }
        return sources
    }
}

extension FleetConfig {
    static let remoteKeys = ["url", "apiKey", "apiKeyEnv"]

    /// The elements of an array (reporting anything else).
    static func array(_ value: JSONValue, at path: String, reader: inout ConfigReader) -> [JSONValue] {
        if case .array(let elements) = value { return elements }
        if value != .null {
            reader.report(path, "expected an array, found \(value.typeName)", fix: "write it as [\"http://host:port\", ...]")
        }
        return []
    }

    /// `apiKey`, or the value of the environment variable `apiKeyEnv` names (reported when unset).
    static func key(_ fields: [String: JSONValue], at path: String, reader: inout ConfigReader) -> String? {
        let key = reader.string(fields, "apiKey", at: path)
        guard let name = reader.string(fields, "apiKeyEnv", at: path) else { return key }
        if key != nil {
            reader.report("\(path).apiKeyEnv", "apiKey is given too", fix: "keep one of \"apiKey\" and \"apiKeyEnv\"")
            return key
        }
        if let value = ProcessInfo.processInfo.environment[name], !value.isEmpty { return value }
        reader.report("\(path).apiKeyEnv", "the environment variable \(name) is not set",
                      fix: "export \(name)=KEY before `fleet up` (or before `fleet reload`), or write \"apiKey\"")
        return nil
    }

    /// A server fleet does not run: `"http://host:port"`, or `{"url": …, "apiKey": …}` / `{"url": …, "apiKeyEnv":
    /// NAME}` for another fleet's gateway that wants a key (read from the environment variable NAME when fleet
    /// starts or reloads).
    static func remoteServer(_ value: JSONValue, at path: String, reader: inout ConfigReader) -> (url: String, apiKey: String?)? {
        var url: String?, key: String?
        switch value {
        case .string(let text):
            url = text
        case .object:
            guard let fields = reader.object(value, at: path, allowed: remoteKeys) else { return nil }
            url = reader.string(fields, "url", at: path)
            if url == nil, fields["url"] == nil {
                reader.report("\(path).url", "is required", fix: "give the server's address, like \"http://10.0.0.7:8090\"")
            }
            key = Self.key(fields, at: path, reader: &reader)
        default:
            reader.report(path, "expected a URL string or an object, found \(value.typeName)",
                          fix: "write \"http://10.0.0.5:8080\", or {\"url\": \"http://10.0.0.7:8090\", \"apiKeyEnv\": \"BACK_FLEET_KEY\"}")
            return nil
        }
        guard let text = url else { return nil }
        guard let parsed = URL(string: text), parsed.scheme == "http" || parsed.scheme == "https", parsed.host != nil,
              parsed.path.isEmpty || parsed.path == "/" else {
            reader.report(path, "\"\(text)\" is not a server address",
                          fix: "write it like \"http://10.0.0.5:8080\" (scheme, host and port; no path)")
            return nil
        }
        return (text.hasSuffix("/") ? String(text.dropLast()) : text, key)
    }
}
