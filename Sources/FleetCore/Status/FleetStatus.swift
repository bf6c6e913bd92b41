public import Foundation

/// What `GET /status` returns and `fleet status` prints: the controller and every instance.
public struct FleetStatus: Codable, Sendable {
    public var controller: ControllerInfo
    public var models: [ModelStatus]
    public var instances: [InstanceStatus]
    /// `memoryBudget` and what the running instances take of it by estimate; absent without a budget.
    public var memory: MemoryStatus?
    /// The controller's client connections; absent when the status was not made by a listening controller.
    public var connections: ConnectionCounts?
    /// The controller's transfers to instances and endpoints: how many, how many paused for a client that does
    /// not read, and the bytes held for clients; absent from older controllers.
    public var upstream: UpstreamCounts?

    public init(controller: ControllerInfo, models: [ModelStatus], instances: [InstanceStatus], memory: MemoryStatus? = nil,
                connections: ConnectionCounts? = nil, upstream: UpstreamCounts? = nil) {
        self.upstream = upstream
        self.controller = controller
        self.models = models
        self.instances = instances
        self.memory = memory
        self.connections = connections
    }

    public var readyCount: Int { instances.filter { $0.state == .ready }.count }
}

public struct ControllerInfo: Codable, Sendable {
    public var version: String
    public var pid: Int32
    /// The address the controller listens on, as `host:port`.
    public var listen: String
    /// The URL clients use: the gateway and this status endpoint.
    public var url: String
    public var config: String
    public var startedAt: Date
    public var stateDirectory: String
    public var llamaServer: String
    /// What `llamaServer --version` said, when it said something fleet understands.
    public var llamaServerVersion: LlamaServerVersion?

    public init(version: String, pid: Int32, listen: String, url: String, config: String, startedAt: Date,
                stateDirectory: String, llamaServer: String, llamaServerVersion: LlamaServerVersion? = nil) {
        self.version = version
        self.pid = pid
        self.listen = listen
        self.url = url
        self.config = config
        self.startedAt = startedAt
        self.stateDirectory = stateDirectory
        self.llamaServer = llamaServer
        self.llamaServerVersion = llamaServerVersion
    }
}

public struct ModelStatus: Codable, Sendable {
    public var name: String
    public var aliases: [String]
    public var path: String
    public var replicas: Int
    /// `roundRobin`, `leastBusy` or `prefixAware` (as set now: `POST /control/policy` may have changed it).
    public var policy: String
    /// Requests waiting for a free slot right now.
    public var queueDepth: Int
    /// Unmanaged llama-servers in this model's pool.
    public var endpoints: [String]
    /// `always` or `onDemand`.
    public var start: String = "always"
    /// Seconds without a request after which the model's instances stop; absent: never.
    public var idleTimeoutSeconds: Double?
    /// llama-server's prompt-cache figures over every answer of this model (all its instances, past ones too).
    public var promptCache: PromptCacheCounts?
    /// Its `discover` entries (absent when it has none).
    public var discovery: [DiscoveryStatus]?

    public init(name: String, aliases: [String], path: String, replicas: Int, policy: String = "roundRobin",
                queueDepth: Int = 0, endpoints: [String] = []) {
        self.name = name
        self.aliases = aliases
        self.path = path
        self.replicas = replicas
        self.policy = policy
        self.queueDepth = queueDepth
        self.endpoints = endpoints
    }
}

/// Memory under `memoryBudget`, in bytes.
public struct MemoryStatus: Codable, Sendable, Equatable {
    public var budget: Int
    public var inUse: Int

    public init(budget: Int, inUse: Int) {
        self.budget = budget
        self.inUse = inUse
    }
}

/// The traffic an instance (or endpoint) has seen through the gateway.
public struct TrafficStatus: Codable, Sendable, Equatable {
    /// Requests running on it now.
    public var inFlight: Int
    /// Its slots: requests it takes at once.
    public var capacity: Int
    /// Requests it answered in full.
    public var served: Int
    /// Requests that failed on it (connect errors, 5xx, broken streams).
    public var errors: Int
    /// Whether it takes new requests (ready, and not suspended by a failover).
    public var inRotation: Bool
    /// Duration of its last successful request, in milliseconds.
    public var lastLatencyMs: Double?
    /// Time to the first byte of its last successful request, in milliseconds.
    public var lastFirstByteMs: Double?
    /// Tokens it generated, as llama-server reported them at the end of each answer.
    public var tokens: Int = 0
    /// Its last answer's generated tokens per second (over the answer's whole duration).
    public var lastTokensPerSecond: Double?
    /// llama-server's prompt-cache figures over its answers.
    public var promptCache: PromptCacheCounts?

    public init(inFlight: Int, capacity: Int, served: Int, errors: Int, inRotation: Bool, lastLatencyMs: Double? = nil,
                lastFirstByteMs: Double? = nil, tokens: Int = 0, lastTokensPerSecond: Double? = nil) {
        self.inFlight = inFlight
        self.capacity = capacity
        self.served = served
        self.errors = errors
        self.inRotation = inRotation
        self.lastLatencyMs = lastLatencyMs
        self.lastFirstByteMs = lastFirstByteMs
        self.tokens = tokens
        self.lastTokensPerSecond = lastTokensPerSecond
    }
}

/// One instance as the status endpoint shows it.
public struct InstanceStatus: Codable, Sendable, Equatable {
    /// `model/replica`, e.g. `gemma/0`.
    public var id: String
    public var model: String
    public var replica: Int
    public var port: Int?
    public var pid: Int32?
    public var state: InstanceState
    /// When the instance entered `state`.
    public var since: Date
    /// When the current process became ready, while it is.
    public var readySince: Date?
    public var restarts: Int
    public var lastError: String?
    /// The last lines of standard error of the process life that ended last (why it crashed or failed).
    public var lastOutput: [String]?
    /// Where its output is captured ("" for an unmanaged endpoint).
    public var logFile: String
    /// False for an unmanaged endpoint (a llama-server fleet balances to but does not run).
    public var managed: Bool = true
    /// Which process generation fills the replica: 0 at start, +1 with each hot-swap restart.
    public var generation: Int = 0
    /// Gateway traffic, once it is in a pool.
    public var traffic: TrafficStatus?

    public init(id: String, model: String, replica: Int, port: Int?, pid: Int32?, state: InstanceState, since: Date,
                readySince: Date?, restarts: Int, lastError: String?, logFile: String) {
        self.id = id
        self.model = model
        self.replica = replica
        self.port = port
        self.pid = pid
        self.state = state
        self.since = since
        self.readySince = readySince
        self.restarts = restarts
        self.lastError = lastError
        self.logFile = logFile
    }
}

/// The JSON coding the status endpoint and its clients share (ISO 8601 dates, sorted keys).
public enum StatusCoding {
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}

/// The controller's client connections (every route on `listen`), for status and metrics.
public struct ConnectionCounts: Codable, Sendable, Equatable {
    /// Open now.
    public var open = 0
    /// Accepted since start.
    public var accepted = 0
    /// Closed to stay under `gateway.maxConnections` (the longest idle first), since start.
    public var evicted = 0
    /// Of those, new connections closed at once because every open one was answering a request.
    public var refused = 0
    /// Closed for a stalled head or body, or for idling past `keepAliveTimeout`, since start.
    public var timedOut = 0

    public init() {}
}
