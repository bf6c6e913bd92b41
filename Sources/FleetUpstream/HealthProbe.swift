/// What one `GET /health` said about an instance.
public enum ProbeResult: Sendable, Equatable {
    /// 200: the model is loaded.
    case ready
    /// 503 "Loading model": up, not ready yet.
    case loading
    /// No answer, or an answer that means trouble; the text says which.
    case down(String)
    /// No answer in time, while the instance's answers to requests in flight kept arriving: busy (its HTTP
    /// threads, or the machine, overloaded), not dead. Counts as passing: an instance that serves is not taken
    /// out of rotation, let alone killed, for a slow `/health`. The text says what timed out.
    case busy(String)

    /// Whether the instance is to be taken as up: `ready`, or `busy` serving.
    public var passes: Bool {
        switch self {
        case .ready, .busy: true
        case .loading, .down: false
        }
    }
}

/// Asks an instance's `/health` whether it is ready, through the shared upstream client.
public struct HealthProbe: Sendable {
    public let client: UpstreamClient
    public let url: String
    public let timeout: Duration

    public init(client: UpstreamClient, port: Int, host: String = "127.0.0.1", timeout: Duration) {
        self.init(client: client, url: "http://\(host):\(port)/health", timeout: timeout)
    }

    public init(client: UpstreamClient, url: String, timeout: Duration) {
        self.client = client
        self.url = url
        self.timeout = timeout
    }

    public func check() async -> ProbeResult {
        let sent = ContinuousClock.now
        do {
            let response = try await client.fetch(UpstreamRequest(url: url, connectTimeout: timeout, totalTimeout: timeout))
            switch response.status {
            case 200: return .ready
            case 503: return .loading
            default: return .down("GET /health answered \(response.status)")
            }
        } catch let error as UpstreamError {
            if error.kind == .timeout, let origin = Self.origin(of: url), await client.received(from: origin, since: sent) {
                return .busy("\(error.description), while its answers kept arriving")
            }
            return .down(error.description)
        } catch {
            return .down("\(error)")
        }
    }

    /// `scheme://host:port/` of `url` (its trailing slash included, so that port 80 is not a prefix of 8080's
    /// URLs); nil for a URL without a path.
    static func origin(of url: String) -> String? {
        guard let scheme = url.firstRange(of: "://"),
              let slash = url[scheme.upperBound...].firstIndex(of: "/") else { return nil }
        return String(url[...slash])
    }
}
