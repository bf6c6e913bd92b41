import NIOCore
public import FleetCore
public import ServiceLifecycle

/// fleet's HTTP client: every upstream request (completions, health probes, the CLI's calls to a controller)
/// goes through one libcurl multi handle driven by one thread.
///
/// It is a `Service`: its `run()` drives the curl thread until the service group shuts down. Requests made
/// before `run()` starts wait in the inbox.
public final class UpstreamClient: Service, Sendable {
    private let loop = CurlEventLoop()

    public init() {}

    /// What the transfers hold right now: how many run, how many wait for a client that does not read, and the
    /// bytes held for their clients.
    public var counts: UpstreamCounts { loop.counters.snapshot }

    public func run() async throws {
        await withTaskCancellationOrGracefulShutdownHandler {
            await self.loop.run()
        } onCancelOrGracefulShutdown: {
            self.loop.stop()
        }
    }

    /// Starts a transfer and returns once its head arrived; the body streams on as curl receives it. Stop
    /// iterating the body (or cancel the task) to abort the transfer.
    /// - Throws: `UpstreamError` when the transfer fails before its head, `CancellationError` when cancelled.
    public func execute(_ request: UpstreamRequest) async throws -> UpstreamStream {
        try await loop.execute(request)
    }

    /// Whether a transfer in flight to `origin` (`http://host:port/`, its trailing slash included) received bytes
    /// at or after `since`. A health probe that timed out asks it: an instance whose answers are arriving is
    /// busy, not dead.
    public func received(from origin: String, since: ContinuousClock.Instant) async -> Bool {
        await loop.received(from: origin, since: since)
    }

    /// Performs a request and buffers the whole response.
    /// - Throws: `UpstreamError` when the transfer fails, `CancellationError` when the task is cancelled.
    public func fetch(_ request: UpstreamRequest) async throws -> UpstreamResponse {
        let stream = try await execute(request)
        var body = ByteBuffer()
        for try await var chunk in stream.body {
            body.writeBuffer(&chunk)
        }
        return UpstreamResponse(status: stream.status, headers: stream.headers, body: body)
    }

    /// Runs `body` with a client whose loop lives exactly as long as the call: for the CLI and tests, which
    /// have no service group.
    public static func with<T: Sendable>(_ body: (UpstreamClient) async throws -> T) async throws -> T {
        let client = UpstreamClient()
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await client.run() }
            defer { group.cancelAll() }
            return try await body(client)
        }
    }
}
