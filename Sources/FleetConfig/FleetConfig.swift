import Foundation

/// A validated fleet: the controller's settings and the models it runs. Built by `FleetConfig.load(file:)`
/// from fleet.json, or by `FleetConfig.singleModel(path:)` for a zero-config run. Every field has its default
/// filled in; paths are absolute.
public struct FleetConfig: Sendable, Equatable {
    /// The model a request that names none goes to: the one marked `"default": true`, else the only one.
    public static func defaultModel(of models: [ModelConfig]) -> ModelConfig? {
        models.first(where: \.isDefault) ?? (models.count == 1 ? models[0] : nil)
    }

    /// Where this configuration came from: the fleet.json path, or a description for zero-config runs.
    public var source: String
    /// The address the controller serves the gateway, the dashboard, status and the control API on.
    public var listen: ListenAddress
    /// The llama-server executable as configured; `nil` means "find it" (see `LlamaServerLocator`).
    public var llamaServer: String?
    /// Ports instances may listen on; each instance gets a free one.
    public var portRange: ClosedRange<Int>
    /// Instance logs and the controller's own files live here.
    public var stateDirectory: String
    public var healthCheck: HealthCheckSettings
    public var restart: RestartSettings
    /// How long a stopping instance gets after SIGTERM before SIGKILL.
    public var stopTimeout: Duration
    /// How long a replaced instance may take to finish its in-flight requests before it is stopped anyway.
    public var drainTimeout: Duration = .seconds(60)
    /// Reload by itself when fleet.json changes on disk.
    public var watch = false
    /// How the gateway talks to clients and instances.
    public var gateway: GatewaySettings = .init()
    /// The most memory the instances may take together (bytes, by estimate; see `MemoryBudget`); nil: no limit.
    public var memoryBudget: Int?
    /// `apiKeys` / `apiKeysFile` and `adminKeys` / `adminKeysFile`, read; the environment's are added at start.
    public var keys: KeySet = .init()
    /// Names clients may reach the controller by, beyond IP addresses, `localhost`, this machine's hostname and
    /// the listen host (`BrowserGuard` refuses any other `Host`); `"*"` allows every name.
    public var allowedHosts: [String] = []
    /// The DNS server `discover` asks (an IP address and port); nil: the nameservers of /etc/resolv.conf.
    public var resolver: ListenAddress?
    /// Other fleets whose models this one offers too (`peers`).
    public var peers: [Peer] = []
    /// The models, sorted by name.
    public var models: [ModelConfig]

    public init(
        source: String,
        listen: ListenAddress = .default,
        llamaServer: String? = nil,
        portRange: ClosedRange<Int> = FleetConfig.defaultPortRange,
        stateDirectory: String,
        healthCheck: HealthCheckSettings = .init(),
        restart: RestartSettings = .init(),
        stopTimeout: Duration = .seconds(10),
        models: [ModelConfig]
    ) {
        self.source = source
        self.listen = listen
        self.llamaServer = llamaServer
        self.portRange = portRange
        self.stateDirectory = stateDirectory
        self.healthCheck = healthCheck
        self.restart = restart
        self.stopTimeout = stopTimeout
        self.models = models
    }

    public static let defaultPortRange = 8100...8199

    /// The model a client's `model` value names, by name or alias.
    public func model(named name: String) -> ModelConfig? {
        models.first { $0.name == name || $0.aliases.contains(name) }
    }
}

/// A host and port to listen on.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Loopback unless the user says otherwise.
    public static let `default` = ListenAddress(host: "127.0.0.1", port: 8090)

    /// Parses `host:port`, `:port` (loopback) or `[v6]:port`.
    public init?(parsing text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (1...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.init(host: host.isEmpty ? "127.0.0.1" : host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// The URL a client on this machine uses to reach this address (`0.0.0.0` is reached via loopback).
    public var url: String {
        let reachable = (host == "0.0.0.0" || host == "::") ? "127.0.0.1" : host
        return "http://" + (reachable.contains(":") ? "[\(reachable)]" : reachable) + ":\(port)"
    }

    public var isLoopback: Bool { host == "127.0.0.1" || host == "localhost" || host == "::1" || host.hasPrefix("127.") }
}

/// How instances are probed.
public struct HealthCheckSettings: Sendable, Equatable {
    /// Time between liveness probes of a ready instance.
    public var interval: Duration = .seconds(2)
    /// How long one probe may take.
    public var timeout: Duration = .seconds(2)
    /// How long an instance may take from spawn to its first 200 on `/health`.
    public var startupTimeout: Duration = .seconds(120)
    /// Consecutive failed probes after which a ready instance is `unhealthy` (out of rotation).
    public var unhealthyAfter: Int = 1
    /// Consecutive failed probes after which an instance is declared dead: killed (SIGKILL, since a hung
    /// process would not answer SIGTERM either), which ends its in-flight requests, and restarted.
    public var restartAfter: Int = 4

    public init() {}
}

/// Limits and timeouts of the OpenAI-compatible gateway.
public struct GatewaySettings: Sendable, Equatable {
    /// Largest request body accepted; beyond it the answer is 413.
    public var maxBodySize: Int = 16 << 20
    /// Longest wait to connect to an instance.
    public var connectTimeout: Duration = .seconds(2)
    /// Longest wait for an instance's response head (prompt processing happens before it).
    public var firstByteTimeout: Duration = .seconds(300)
    /// A response that sends nothing for this long is cut (a stream keeps it alive token by token).
    public var idleTimeout: Duration = .seconds(120)
    /// Further instances tried when one cannot be connected to or answers 5xx before any byte was sent.
    public var retries: Int = 2
    /// A new client connection must send a whole request head within this, or it is closed.
    public var headerTimeout: Duration = .seconds(10)
    /// A request body may pause this long between bytes, or the connection is closed.
    public var bodyTimeout: Duration = .seconds(30)
    /// A client connection with no request in progress is closed after this long.
    public var keepAliveTimeout: Duration = .seconds(60)
    /// The most client connections open at once; beyond it the longest idle ones are closed first (a
    /// connection serving a request never is).
    public var maxConnections: Int = 4096

    public init() {}
}

/// How a model's pool picks an instance for a request.
public enum SchedulingPolicy: String, Sendable, Equatable, CaseIterable {
    /// Rotate over the ready instances, skipping those whose slots are all busy.
    case roundRobin
    /// The instance with the fewest requests in flight; ties broken round-robin.
    case leastBusy
    /// The instance whose prompt cache most likely holds the request's prompt (the longest prefix it served
    /// recently), unless it is much busier than the least busy one (`prefixRouting.maxImbalance`).
    case prefixAware
}

/// How `prefixAware` remembers what each instance's prompt cache holds, and when balance beats affinity.
public struct PrefixRoutingSettings: Sendable, Equatable {
    /// Prompt blocks (about 256 bytes of request each) remembered per instance, least recently used forgotten
    /// first: 8192 blocks are 2 MiB of prompt, about 500k tokens, more than a few slots and llama-server's
    /// host-memory prompt cache hold for a small model.
    public var rememberBlocks: Int = 8192
    /// The instance holding a request's prefix takes it (with a free slot), or is waited for (when full, and no
    /// other instance is idle), while it has at most this many more requests in flight than the least busy one;
    /// beyond it the least busy one takes it, and holds the conversation from then on.
    public var maxImbalance: Int = 2
    /// Session keys (`X-Session-Id`, `prompt_cache_key`, `user`) remembered per model.
    public var rememberSessions: Int = 10_000
    /// The longest a request waits for its owner when the owner's slots are all busy, while another instance
    /// could take it (it waits only as long as evaluating its cached prefix elsewhere would take, measured from
    /// llama-server's `prompt_ms`, and at most this). `0`: never wait beside a free slot.
    public var maxWait: Duration = .seconds(30)

    public init() {}
}

/// The per-model wait line for requests that find every slot busy (or no instance ready).
public struct QueueSettings: Sendable, Equatable {
    /// Requests waiting beyond this many are refused with 429.
    public var maxSize: Int = 100
    /// A request waiting this long is refused with 503.
    public var timeout: Duration = .seconds(60)

    public init() {}
}

/// How crashed instances are restarted.
public struct RestartSettings: Sendable, Equatable {
    /// The wait before the first restart after a crash.
    public var initialDelay: Duration = .seconds(1)
    /// The longest wait between restarts.
    public var maxDelay: Duration = .seconds(30)
    /// Each consecutive crash multiplies the wait by this.
    public var multiplier: Double = 2
    /// This many crashes within `crashWindow` mark the instance `failed` instead of restarting it again.
    public var maxCrashes: Int = 5
    /// The window `maxCrashes` counts in; an instance ready for this long has its backoff reset.
    public var crashWindow: Duration = .seconds(300)

    public init() {}
}

/// One model of the fleet: a GGUF and how to run it.
public struct ModelConfig: Sendable, Equatable {
    /// The name clients send as `model`.
    public var name: String
    /// Absolute path of the GGUF file.
    public var path: String
    public var replicas: Int = 1
    public var contextSize: Int?
    /// -1 lets llama-server decide, 0 runs on the CPU.
    public var gpuLayers: Int?
    public var threads: Int?
    /// Slots: requests one instance serves at once.
    public var parallel: Int?
    public var batchSize: Int?
    public var flashAttention: FlashAttention?
    /// Extra llama-server arguments, passed as they are after fleet's own.
    public var args: [String] = []
    /// Extra environment variables for the instances.
    public var env: [String: String] = [:]
    /// Other names clients may use for this model.
    public var aliases: [String] = []
    /// Sampling values injected into requests that omit them.
    public var defaults: SamplingDefaults = .init()
    public var policy: SchedulingPolicy = .roundRobin
    /// What `prefixAware` (and session affinity) remembers, and its load guard.
    public var prefixRouting: PrefixRoutingSettings = .init()
    public var queue: QueueSettings = .init()
    /// llama-servers fleet does not run (`http://host:port`) that join this model's pool.
    public var endpoints: [String] = []
    /// Where to find more of them in DNS: every address (A/AAAA) or service record (SRV) is a member, re-resolved
    /// on an interval.
    public var discover: [DiscoverySource] = []

    /// The keys fleet sends to endpoints that are other fleets' gateways, by endpoint URL (`endpoints` entries
    /// written as `{"url", "apiKey" | "apiKeyEnv"}`): to that upstream only, never shown in status or logs.
    public var endpointKeys: [String: String] = [:]

    /// Whether the model has members fleet does not run (fixed endpoints or discovered ones).
    public var hasRemoteMembers: Bool { !endpoints.isEmpty || !discover.isEmpty }
    /// Start the instances on the first request instead of with the fleet.
    public var startOnDemand = false
    /// Drain and stop the instances after this long without a request; the next request starts them again.
    public var idleTimeout: Duration?
    /// One instance's memory in bytes for `memoryBudget`, instead of the estimate from the GGUF.
    public var memory: Int?
    /// The model a request means when it names none (llama-server's native routes: `/completion`, `/tokenize`, …).
    public var isDefault = false

    /// Whether its instances answer `/v1/embeddings`: llama-server needs `--embeddings` (or `LLAMA_ARG_EMBEDDINGS`).
    public var servesEmbeddings: Bool { hasFlag(["--embeddings", "--embedding"], env: "LLAMA_ARG_EMBEDDINGS") }
    /// Whether its instances answer rerank requests: llama-server needs `--reranking` (or `LLAMA_ARG_RERANKING`).
    public var servesReranking: Bool { hasFlag(["--reranking", "--rerank"], env: "LLAMA_ARG_RERANKING") }

    private func hasFlag(_ flags: [String], env name: String) -> Bool {
        args.contains { flags.contains($0) } || ["1", "true", "on", "yes"].contains(env[name]?.lowercased() ?? "")
    }

    /// Whether the model runs only while used (`onDemand`, or an `idleTimeout`): a request may have to start it,
    /// and `memoryBudget` may stop it to make room.
    public var runsWhileUsed: Bool { startOnDemand || idleTimeout != nil }

    public init(name: String, path: String) {
        self.name = name
        self.path = path
    }
}

/// llama-server's `--flash-attn` value.
public enum FlashAttention: String, Sendable, Equatable, CaseIterable {
    case on, off, auto
}

/// Per-model sampling defaults, in the OpenAI request field names.
public struct SamplingDefaults: Sendable, Equatable {
    public var temperature: Double?
    public var topP: Double?
    public var topK: Int?

    public init(temperature: Double? = nil, topP: Double? = nil, topK: Int? = nil) {
        self.temperature = temperature
        self.topP = topP
        self.topK = topK
    }

    public var isEmpty: Bool { temperature == nil && topP == nil && topK == nil }
}

/// One DNS name whose records are members of a model's pool.
public struct DiscoverySource: Sendable, Equatable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable, Hashable {
        /// A and AAAA records: every address is a member, on `port`.
        case addresses(name: String, port: Int)
        /// SRV records: each names a host (resolved to its addresses) and a port.
        case services(name: String)
    }

    public var kind: Kind
    /// How often the name is resolved again (sooner when its records' TTL is shorter, never more than once a second).
    public var interval: Duration = .seconds(10)
    /// The key fleet sends the members it finds, when they are other fleets' gateways (never shown).
    public var apiKey: String?

    public init(_ kind: Kind, interval: Duration = .seconds(10), apiKey: String? = nil) {
        self.kind = kind
        self.interval = interval
        self.apiKey = apiKey
    }

    public var description: String {
        switch kind {
        case .addresses(let name, let port): "dns \(name):\(port)"
        case .services(let name): "srv \(name)"
        }
    }
}

/// Another fleet whose every model this one offers (fleet.json `peers`): its gateway joins the pool of each of
/// its models (a model this fleet also has gets it as one more member; any other is added, served by it alone).
public struct Peer: Sendable, Equatable, CustomStringConvertible {
    /// Its gateway, `http://host:port`.
    public var url: String
    /// The key fleet sends it (`Authorization: Bearer`), never the client's own.
    public var apiKey: String?
    /// How often its model list is read again.
    public var refresh: Duration = .seconds(10)

    public init(url: String, apiKey: String? = nil, refresh: Duration = .seconds(10)) {
        self.url = url
        self.apiKey = apiKey
        self.refresh = refresh
    }

    public var description: String { url }
}
