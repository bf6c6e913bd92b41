/// What one `GET /health` said about an instance.
public enum ProbeResult: Sendable, Equatable {
    /// 200: the model is loaded.
    case ready
    /// 503 "Loading model": up, not ready yet.
    case loading
    /// No answer, or an answer that means trouble; the text says which.
    case down(String)
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
        do {
            let response = try await client.fetch(UpstreamRequest(url: url, connectTimeout: timeout, totalTimeout: timeout))
            switch response.status {
            case 200: return .ready
            case 503: return .loading
            default: return .down("GET /health answered \(response.status)")
            }
        } catch let error as UpstreamError {
            return .down(error.description)
        } catch {
            return .down("\(error)")
        }
    }
}
