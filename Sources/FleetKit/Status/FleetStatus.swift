public import Foundation

/// What `GET /status` returns and `fleet status` prints: the controller and every instance.
public struct FleetStatus: Codable, Sendable {
    public var controller: ControllerInfo
    public var models: [ModelStatus]
    public var instances: [InstanceStatus]

    public init(controller: ControllerInfo, models: [ModelStatus], instances: [InstanceStatus]) {
        self.controller = controller
        self.models = models
        self.instances = instances
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

    public init(version: String, pid: Int32, listen: String, url: String, config: String, startedAt: Date,
                stateDirectory: String, llamaServer: String) {
        self.version = version
        self.pid = pid
        self.listen = listen
        self.url = url
        self.config = config
        self.startedAt = startedAt
        self.stateDirectory = stateDirectory
        self.llamaServer = llamaServer
    }
}

public struct ModelStatus: Codable, Sendable {
    public var name: String
    public var aliases: [String]
    public var path: String
    public var replicas: Int

    public init(name: String, aliases: [String], path: String, replicas: Int) {
        self.name = name
        self.aliases = aliases
        self.path = path
        self.replicas = replicas
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
    /// Where its output is captured.
    public var logFile: String

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
