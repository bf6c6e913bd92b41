public import Foundation

extension FleetConfig {
    /// The keys fleet.json accepts at its top level.
    static let controllerKeys = ["$schema", "listen", "llamaServer", "portRange", "stateDir", "healthCheck",
                                 "restart", "stopTimeout", "drainTimeout", "watch", "gateway", "memoryBudget", "apiKeys",
                                 "apiKeysFile", "adminKeys", "adminKeysFile", "allowedHosts", "resolver", "peers", "models"]
    static let gatewayKeys = ["maxBodySize", "connectTimeout", "firstByteTimeout", "idleTimeout", "retries",
                              "headerTimeout", "bodyTimeout", "keepAliveTimeout", "maxConnections"]
    static let queueKeys = ["maxSize", "timeout"]
    static let prefixRoutingKeys = ["rememberBlocks", "maxImbalance", "rememberSessions", "maxWait"]
    static let healthCheckKeys = ["interval", "timeout", "startupTimeout", "unhealthyAfter", "restartAfter"]
    static let restartKeys = ["initialDelay", "maxDelay", "multiplier", "maxCrashes", "crashWindow"]
    static let modelKeys = ["path", "replicas", "contextSize", "gpuLayers", "threads", "parallel", "batchSize",
                            "flashAttention", "args", "env", "aliases", "defaults", "policy", "prefixRouting", "queue", "endpoints", "discover", "start",
                            "idleTimeout", "memory", "default"]
    static let defaultsKeys = ["temperature", "top_p", "top_k"]

    /// Reads, decodes and validates a fleet.json.
    /// - Throws: `ConfigError` listing every problem: unreadable file, invalid JSON, unknown keys, wrong types,
    ///   out-of-range values, missing or non-GGUF model files, duplicate names or aliases, a port range too small.
    ///   With `checkFiles: false` the disk is not consulted (for `fleet models`, which reports a missing GGUF
    ///   itself).
    ///   `environment`'s `LLAMACPP_CONTEXT_SIZE` / `LLAMACPP_GPU_LAYERS` fill in what a model leaves unset.
    public static func load(file: String, checkFiles: Bool = true,
                            environment: ProviderEnvironment = ProviderEnvironment()) throws(ConfigError) -> FleetConfig {
        let url = URL(fileURLWithPath: file).standardizedFileURL
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            let exists = FileManager.default.fileExists(atPath: url.path)
            throw ConfigError(file: file, issues: [ConfigIssue(
                path: "",
                message: exists ? "cannot read the file (\(Self.reason(error)))" : "no such file",
                fix: exists ? "check its permissions" :
                    "create it (see docs/configuration.md), pass --config PATH, or run one model with --model PATH.gguf")])
        }
        return try decode(data, source: file, baseDirectory: url.deletingLastPathComponent().path, checkFiles: checkFiles,
                          environment: environment)
    }

    /// Decodes and validates fleet.json text; relative paths resolve against `baseDirectory`.
    /// - Throws: `ConfigError` with every problem found.
    /// - Parameter lenient: return what could be read even when the file has problems (each key is read on its
    ///   own; one that is wrong keeps its default). For the CLI's lookups (`listen`, keys, `llamaServer`), so a
    ///   typo elsewhere never stops `fleet status` or `fleet down`. Still throws for text that is not JSON.
    public static func decode(_ data: Data, source: String, baseDirectory: String, checkFiles: Bool = true,
                              environment: ProviderEnvironment = ProviderEnvironment(),
                              lenient: Bool = false) throws(ConfigError) -> FleetConfig {
        let root: JSONValue
        do {
            root = try JSONValue.parse(data)
        } catch {
            throw ConfigError(file: source, issues: [ConfigIssue(
                path: "", message: "not valid JSON: \(Self.reason(error))",
                fix: "fix the syntax (a trailing comma or a missing quote is the usual cause)")])
        }
        var reader = ConfigReader()
        var config = FleetConfig(source: source, stateDirectory: Self.resolve(".fleet", against: baseDirectory), models: [])
        guard let top = reader.object(root, at: "", allowed: controllerKeys) else {
            throw ConfigError(file: source, issues: reader.issues)
        }

        if let text = reader.string(top, "listen", at: "") {
            if let address = ListenAddress(parsing: text) {
                config.listen = address
            } else {
                reader.report("listen", "\"\(text)\" is not host:port", fix: "write it like \"127.0.0.1:8090\"")
            }
        }
        config.llamaServer = reader.string(top, "llamaServer", at: "").map { Self.resolve($0, against: baseDirectory) }
        if let text = reader.string(top, "portRange", at: "") {
            if let range = Self.parsePortRange(text) {
                config.portRange = range
            } else {
                reader.report("portRange", "\"\(text)\" is not a port range",
                              fix: "write it like \"8100-8199\" (ports 1024-65535, low to high)")
            }
        }
        if let dir = reader.string(top, "stateDir", at: "") {
            config.stateDirectory = Self.resolve(dir, against: baseDirectory)
        }
        if let value = top["healthCheck"], let object = reader.object(value, at: "healthCheck", allowed: healthCheckKeys) {
            let path = "healthCheck"
            var health = HealthCheckSettings()
            health.interval = reader.duration(object, "interval", at: path, minimum: .milliseconds(50)) ?? health.interval
            health.timeout = reader.duration(object, "timeout", at: path, minimum: .milliseconds(50)) ?? health.timeout
            health.startupTimeout = reader.duration(object, "startupTimeout", at: path, minimum: .milliseconds(100))
                ?? health.startupTimeout
            health.unhealthyAfter = reader.int(object, "unhealthyAfter", at: path, range: 1...1000) ?? health.unhealthyAfter
            health.restartAfter = reader.int(object, "restartAfter", at: path, range: 1...1000) ?? health.restartAfter
            if health.restartAfter < health.unhealthyAfter {
                reader.report("healthCheck.restartAfter", "is smaller than unhealthyAfter (\(health.unhealthyAfter))",
                              fix: "set restartAfter to at least unhealthyAfter")
            }
            config.healthCheck = health
        }
        if let value = top["restart"], let object = reader.object(value, at: "restart", allowed: restartKeys) {
            let path = "restart"
            var restart = RestartSettings()
            restart.initialDelay = reader.duration(object, "initialDelay", at: path) ?? restart.initialDelay
            restart.maxDelay = reader.duration(object, "maxDelay", at: path) ?? restart.maxDelay
            restart.multiplier = reader.double(object, "multiplier", at: path, range: 1...100) ?? restart.multiplier
            restart.maxCrashes = reader.int(object, "maxCrashes", at: path, range: 1...10_000) ?? restart.maxCrashes
            restart.crashWindow = reader.duration(object, "crashWindow", at: path, minimum: .seconds(1)) ?? restart.crashWindow
            if restart.maxDelay < restart.initialDelay {
                reader.report("restart.maxDelay", "is shorter than initialDelay", fix: "set maxDelay to at least initialDelay")
            }
            config.restart = restart
        }
        config.stopTimeout = reader.duration(top, "stopTimeout", at: "") ?? config.stopTimeout
        config.drainTimeout = reader.duration(top, "drainTimeout", at: "") ?? config.drainTimeout
        config.watch = reader.bool(top, "watch", at: "") ?? config.watch
        config.memoryBudget = reader.size(top, "memoryBudget", at: "")
        config.keys = KeySet(
            user: Self.readKeys(top, "apiKeys", file: "apiKeysFile", baseDirectory: baseDirectory, checkFiles: checkFiles, reader: &reader),
            admin: Self.readKeys(top, "adminKeys", file: "adminKeysFile", baseDirectory: baseDirectory, checkFiles: checkFiles, reader: &reader))
        if let value = top["gateway"], let object = reader.object(value, at: "gateway", allowed: gatewayKeys) {
            let path = "gateway"
            var gateway = GatewaySettings()
            gateway.maxBodySize = reader.size(object, "maxBodySize", at: path) ?? gateway.maxBodySize
            gateway.connectTimeout = reader.duration(object, "connectTimeout", at: path, minimum: .milliseconds(10))
                ?? gateway.connectTimeout
            gateway.firstByteTimeout = reader.duration(object, "firstByteTimeout", at: path, minimum: .milliseconds(10))
                ?? gateway.firstByteTimeout
            gateway.idleTimeout = reader.duration(object, "idleTimeout", at: path, minimum: .seconds(1)) ?? gateway.idleTimeout
            gateway.retries = reader.int(object, "retries", at: path, range: 0...10) ?? gateway.retries
            gateway.headerTimeout = reader.duration(object, "headerTimeout", at: path, minimum: .milliseconds(100))
                ?? gateway.headerTimeout
            gateway.bodyTimeout = reader.duration(object, "bodyTimeout", at: path, minimum: .milliseconds(100))
                ?? gateway.bodyTimeout
            gateway.keepAliveTimeout = reader.duration(object, "keepAliveTimeout", at: path, minimum: .milliseconds(100))
                ?? gateway.keepAliveTimeout
            gateway.maxConnections = reader.int(object, "maxConnections", at: path, range: 16...1_000_000)
                ?? gateway.maxConnections
            config.gateway = gateway
        }
        if let resolver = reader.string(top, "resolver", at: "") {
            // An address, not a name: the resolver is what names are looked up with.
            var v4 = in_addr(), v6 = in6_addr()
            if let address = ListenAddress(parsing: resolver),
               inet_pton(AF_INET, address.host, &v4) == 1 || inet_pton(AF_INET6, address.host, &v6) == 1 {
                config.resolver = address
            } else {
                reader.report("resolver", "\"\(resolver)\" is not an IP address and port",
                              fix: "write the DNS server's address and port, like \"10.96.0.10:53\" or \"[fd00::10]:53\" (or leave it out for /etc/resolv.conf's)")
            }
        }
        var peers: [JSONValue] = []
        if let value = top["peers"] { peers = Self.array(value, at: "peers", reader: &reader) }
        for (index, entry) in peers.enumerated() {
            if let remote = remoteServer(entry, at: "peers[\(index)]", reader: &reader) {
                config.peers.append(Peer(url: remote.url, apiKey: remote.apiKey))
            }
        }
        config.allowedHosts = reader.stringArray(top, "allowedHosts", at: "",
                                                 hint: "host names clients use to reach this fleet, e.g. [\"fleet.lan\"]")
            ?? config.allowedHosts

        // A front fleet may serve only its peers' models.
        switch top["models"] {
        case nil, .null?:
            if config.peers.isEmpty {
                reader.report("models", "no models are declared",
                              fix: "add one, e.g. \"models\": { \"gemma\": { \"path\": \"models/gemma.gguf\" } } (or \"peers\" to offer other fleets' models)")
            }
        case .object(let models)?:
            if models.isEmpty && config.peers.isEmpty {
                reader.report("models", "no models are declared", fix: "add at least one model (or \"peers\" to offer other fleets' models)")
            }
            for name in models.keys.sorted() {
                if let model = Self.readModel(name: name, value: models[name]!, baseDirectory: baseDirectory, reader: &reader) {
                    config.models.append(model)
                }
            }
        case let other?:
            reader.report("models", "expected an object keyed by model name, found \(other.typeName)",
                          fix: "write it as { \"NAME\": { \"path\": \"...gguf\" } }")
        }

        for index in config.models.indices where config.models[index].replicas > 0 {
            environment.applyDefaults(to: &config.models[index])
        }
        config.validate(into: &reader, checkFiles: checkFiles)
        if !reader.issues.isEmpty && !lenient {
            throw ConfigError(file: source, issues: reader.issues)
        }
        return config
    }

    /// fleet.json read leniently (see `decode(lenient:)`): nil only when the file cannot be read or is not JSON.
    public static func loadLeniently(file: String) -> FleetConfig? {
        let url = URL(fileURLWithPath: file).standardizedFileURL
        guard let data = try? Data(contentsOf: url) else { return nil }
        return try? decode(data, source: file, baseDirectory: url.deletingLastPathComponent().path, lenient: true)
    }

    /// Keys from an array in the file and from a key file (one per line, `#` comments). Keys must be at least 8
    /// characters without spaces; a problem names the key's position, never the key.
    private static func readKeys(_ top: [String: JSONValue], _ key: String, file fileKey: String, baseDirectory: String,
                                 checkFiles: Bool, reader: inout ConfigReader) -> [String] {
        var keys = reader.stringArray(top, key, at: "", hint: "write it as [\"a-long-random-key\"]") ?? []
        if let path = reader.string(top, fileKey, at: ""), checkFiles {
            let resolved = resolve(path, against: baseDirectory)
            do {
                keys += try KeySet.readFile(resolved)
            } catch {
                reader.report(fileKey, "\(resolved) cannot be read", fix: "create it with one key per line, or remove \(fileKey)")
            }
        }
        for (index, candidate) in keys.enumerated()
        where candidate.count < 8 || candidate.contains(where: { $0.isWhitespace }) {
            reader.report("\(key)[\(index)]", "is too short or contains spaces",
                          fix: "use a random key of at least 8 characters, e.g. `openssl rand -hex 24`")
        }
        return keys
    }

    static func parsePortRange(_ text: String) -> ClosedRange<Int>? {
        let parts = text.split(separator: "-").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2, let low = parts[0], let high = parts[1], 1024 <= low, low <= high, high <= 65535 else {
            return nil
        }
        return low...high
    }

    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.unicodeScalars.allSatisfy {
            CharacterSet.alphanumerics.contains($0) || "._-:".unicodeScalars.contains($0)
        }
    }

    /// Expands `~` and resolves a relative path against a directory.
    public static func resolve(_ path: String, against base: String) -> String {
        let expanded = (path as NSString).expandingTildeInPath
        if expanded.hasPrefix("/") { return URL(fileURLWithPath: expanded).standardizedFileURL.path }
        return URL(fileURLWithPath: base).appendingPathComponent(expanded).standardizedFileURL.path
    }

    private static func reason(_ error: any Error) -> String {
        let ns = error as NSError
        if let debug = ns.userInfo[NSDebugDescriptionErrorKey] as? String { return debug }
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError,
           let debug = underlying.userInfo[NSDebugDescriptionErrorKey] as? String { return debug }
        if case DecodingError.dataCorrupted(let context) = error {
            if let underlying = context.underlyingError { return reason(underlying) }
            return context.debugDescription
        }
        return ns.localizedDescription
    }
}
