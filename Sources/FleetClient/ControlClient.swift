import Foundation
import NIOCore
public import FleetCore
import FleetUpstream
import FleetConfig

/// How the CLI talks to a running controller: over its HTTP control API, the same one scripts and dashboards use.
public struct ControlClient: Sendable {
    /// The controller's base URL, e.g. `http://127.0.0.1:8090`.
    public let baseURL: String
    /// Sent as `Authorization: Bearer` when the fleet has keys (see `apiKey(explicit:configPath:)`).
    public let apiKey: String?

    public init(baseURL: String, apiKey: String? = nil) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.apiKey = apiKey
    }

    /// The controller wants a key this client does not have (401), or one with more rights (403).
    public struct Unauthorized: Error, CustomStringConvertible {
        public var url: String
        public var forbidden: Bool
        public var description: String {
            forbidden
                ? "the controller at \(url) refused this key for that: restart, swap, reload and shutdown need one of its adminKeys (set FLEET_API_KEY to one, or pass --api-key)"
                : "the controller at \(url) requires an API key: set FLEET_API_KEY, pass --api-key, or run where its fleet.json (with apiKeys) is, or name it with --config"
        }
    }

    /// Nothing answers at the controller's address.
    public struct Unreachable: Error, CustomStringConvertible {
        public var url: String
        public var description: String {
            "no fleet controller is running at \(url): start one with `fleet up`, or point at another with --url or --config"
        }
    }

    /// The controller answered, but not as a controller would.
    public struct BadAnswer: Error, CustomStringConvertible {
        public var url: String
        public var detail: String
        public var description: String { "\(url) did not answer as a fleet controller: \(detail)" }
    }

    public func status() async throws -> FleetStatus {
        let response = try await send("GET", "/status")
        do {
            return try StatusCoding.decoder().decode(FleetStatus.self, from: Data(response.body.readableBytesView))
        } catch {
            throw BadAnswer(url: baseURL + "/status", detail: "unexpected body (\(error))")
        }
    }

    public func health() async throws -> ControllerHealth {
        let response = try await send("GET", "/health")
        guard let health = try? StatusCoding.decoder().decode(ControllerHealth.self, from: Data(response.body.readableBytesView)) else {
            throw BadAnswer(url: baseURL + "/health", detail: "unexpected body")
        }
        return health
    }

    /// Asks the controller to stop all instances and exit; returns once it accepted.
    public func shutdown() async throws {
        do {
            _ = try await send("POST", "/control/shutdown", body: [])
        } catch let error as UpstreamError where error.kind == .transferBroken {
            // The controller closed the connection because it is already going down: that is what was asked.
        }
    }

    /// Hot-swaps every replica of `model`; returns once done (each replacement ready, each old instance drained
    /// and stopped).
    /// - Throws: `BadAnswer` with the controller's reason (unknown model, a restart already running, a
    ///   replacement that did not start), `Unreachable`.
    public func restart(model: String) async throws -> RestartResult {
        let path = "/control/restart/" + (model.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? model)
        let response = try await send("POST", path, body: [], timeout: nil)
        do {
            return try StatusCoding.decoder().decode(RestartResult.self, from: Data(response.body.readableBytesView))
        } catch {
            throw BadAnswer(url: baseURL + path, detail: "unexpected body (\(error))")
        }
    }

    /// Swaps `model` onto another GGUF, replica by replica, without failing a request; fleet.json is updated
    /// once every replica runs the new file.
    /// - Throws: `BadAnswer` with the controller's reason, `Unreachable`.
    public func swap(model: String, path: String) async throws -> RestartResult {
        let route = "/control/swap/" + (model.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? model)
        let body = try JSONEncoder().encode(SwapRequest(path: path))
        let response = try await send("POST", route, body: Array(body), timeout: nil)
        do {
            return try StatusCoding.decoder().decode(RestartResult.self, from: Data(response.body.readableBytesView))
        } catch {
            throw BadAnswer(url: baseURL + route, detail: "unexpected body (\(error))")
        }
    }

    /// Makes the controller read its fleet.json again and apply the difference. An invalid file changes
    /// nothing: the result lists its problems.
    /// - Throws: `BadAnswer` when the controller has no fleet.json, `Unreachable`.
    public func reload() async throws -> ReloadResult {
        // An invalid file answers 400 with a result that lists its problems: decoded whatever the status.
        let response = try await exchange("POST", "/control/reload", body: [], timeout: nil)
        guard let result = try? StatusCoding.decoder().decode(ReloadResult.self, from: Data(response.body.readableBytesView)) else {
            throw BadAnswer(url: baseURL + "/control/reload", detail: Self.errorDetail(status: response.status, body: response.bodyText))
        }
        return result
    }

    /// Switches `model`'s routing policy (`roundRobin`, `leastBusy`, `prefixAware`) at once, without touching a
    /// process; requests already routed keep their instance.
    /// - Throws: `BadAnswer` with the controller's reason (404 unknown model, 400 unknown policy), `Unreachable`,
    ///   `Unauthorized` (changing the policy needs an admin key when the fleet has keys).
    public func setPolicy(model: String, policy: String) async throws -> PolicyChange {
        let body = try JSONEncoder().encode(["model": model, "policy": policy])
        let response = try await exchange("POST", "/control/policy", body: Array(body), headers: [("Content-Type", "application/json")],
                                          timeout: .seconds(10))
        guard (200..<300).contains(response.status) else {
            // A controller from before the policy route answers an empty 404: say that, not "HTTP 404".
            let detail = response.status == 404 && response.body.readableBytes == 0
                ? "it has no POST /control/policy (a fleet older than --compare; update it)"
                : Self.errorDetail(status: response.status, body: response.bodyText)
            throw BadAnswer(url: baseURL + "/control/policy", detail: detail)
        }
        do {
            return try StatusCoding.decoder().decode(PolicyChange.self, from: Data(response.body.readableBytesView))
        } catch {
            throw BadAnswer(url: baseURL + "/control/policy", detail: "unexpected body (\(error))")
        }
    }

    /// The last `lines` lines of a replica's log (`replica` nil: the model's only replica).
    public func logs(model: String, replica: Int?, lines: Int) async throws -> String {
        try await send("GET", Self.logsPath(model: model, replica: replica, lines: lines, follow: false)).bodyText
    }

    /// The last `lines` lines, then everything the replica writes next, as it arrives; ends when the controller
    /// stops (or the caller stops iterating).
    public func followLogs(model: String, replica: Int?, lines: Int) async throws -> AsyncThrowingStream<String, any Error> {
        let url = baseURL + Self.logsPath(model: model, replica: replica, lines: lines, follow: true)
        let apiKey = self.apiKey
        let baseURL = self.baseURL
        let (stream, continuation) = AsyncThrowingStream<String, any Error>.makeStream()
        let task = Task {
            do {
                try await UpstreamClient.with { client in
                    let response = try await client.execute(UpstreamRequest(url: url, headers: Self.authorization(apiKey),
                                                                            connectTimeout: .seconds(2)))
                    if response.status == 401 || response.status == 403 {
                        throw Unauthorized(url: baseURL, forbidden: response.status == 403)
                    }
                    guard response.status == 200 else {
                        var text = ""
                        for try await chunk in response.body { text += String(buffer: chunk) }
                        throw BadAnswer(url: url, detail: Self.errorDetail(status: response.status, body: text))
                    }
                    do {
                        for try await chunk in response.body { continuation.yield(String(buffer: chunk)) }
                    } catch is UpstreamError {
                        // The controller closed the stream: it stopped. Like `tail -f` of a file that is gone,
                        // that is the end, not an error.
                    }
                }
                continuation.finish()
            } catch let error as UpstreamError where error.kind == .connectFailed {
                continuation.finish(throwing: Unreachable(url: baseURL))
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    static func logsPath(model: String, replica: Int?, lines: Int, follow: Bool) -> String {
        let name = model.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? model
        return "/logs/\(name)" + (replica.map { "/\($0)" } ?? "") + "?lines=\(lines)" + (follow ? "&follow=1" : "")
    }

    /// The raw `/status` JSON, as the controller wrote it.
    public func statusJSON() async throws -> String {
        try await send("GET", "/status").bodyText
    }

    /// A request whose answer must be a success (2xx).
    private func send(_ method: String, _ path: String, body: [UInt8]? = nil,
                      timeout: Duration? = .seconds(10)) async throws -> UpstreamResponse {
        let response = try await exchange(method, path, body: body, timeout: timeout)
        guard (200..<300).contains(response.status) else {
            throw BadAnswer(url: baseURL + path, detail: Self.errorDetail(status: response.status, body: response.bodyText))
        }
        return response
    }

    /// One request to the controller with the key, whatever the answer's status but 401/403; unreachable and
    /// unauthorized answers become the errors that say what to do.
    private func exchange(_ method: String, _ path: String, body: [UInt8]?, headers: [(String, String)] = [],
                          timeout: Duration?) async throws -> UpstreamResponse {
        let url = baseURL + path
        let response: UpstreamResponse
        do {
            response = try await UpstreamClient.with { client in
                // X-Fleet-Client: what the controller asks of control requests, which a web page cannot send.
                try await client.fetch(UpstreamRequest(method: method, url: url,
                                                       headers: Self.authorization(apiKey) + [("X-Fleet-Client", "cli")] + headers, body: body.map { ByteBuffer(bytes: $0) },
                                                       connectTimeout: .seconds(2), totalTimeout: timeout))
            }
        } catch let error as UpstreamError where error.kind == .connectFailed {
            throw Unreachable(url: baseURL)
        }
        if response.status == 401 || response.status == 403 {
            throw Unauthorized(url: baseURL, forbidden: response.status == 403)
        }
        return response
    }

    /// What went wrong, from an error answer: the control API's `{"error": "..."}` (or `{"error": {"message":
    /// "..."}}`), not the JSON around it.
    static func errorDetail(status: Int, body: String) -> String {
        if let message = (try? JSONDecoder().decode([String: String].self, from: Data(body.utf8)))?["error"] { return message }
        if let json = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
           let message = (json["error"] as? [String: Any])?["message"] as? String {
            return message
        }
        return "HTTP \(status): \(body.prefix(200))"
    }

    /// The header that carries `key`, if any.
    static func authorization(_ key: String?) -> [(String, String)] {
        key.map { [("Authorization", "Bearer " + $0)] } ?? []
    }

    /// The key the CLI sends: `--api-key`, else `FLEET_API_KEY`, else the config file's first admin key (or API
    /// key, or the first line of their key files), else the first of `FLEET_ADMIN_KEYS` / `FLEET_API_KEYS`: so
    /// the commands run where a fleet's fleet.json is just work. Read leniently: a broken file gives no key.
    public static func apiKey(explicit: String?, configPath: String,
                              environment: [String: String]? = nil) -> String? {
        let environment = environment ?? ProcessInfo.processInfo.environment
        if let explicit, !explicit.isEmpty { return explicit }
        if let key = environment["FLEET_API_KEY"], !key.isEmpty { return key }
        let keys = (FleetConfig.loadLeniently(file: configPath)?.keys ?? KeySet()).adding(environment: environment)
        return keys.admin.first ?? keys.user.first
    }

    /// The `llamaServer` of the config file, resolved against its folder (read leniently).
    public static func llamaServer(configPath: String) -> String? {
        FleetConfig.loadLeniently(file: configPath)?.llamaServer
    }

    /// Where to find the controller: `--url` when given, else the `listen` of the config file (read leniently,
    /// so a broken fleet.json does not stop `fleet status` or `fleet down`), else the default address.
    public static func baseURL(url: String?, configPath: String) -> String {
        if let url { return url }
        return (FleetConfig.loadLeniently(file: configPath)?.listen ?? ListenAddress.default).url
    }
}
