import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore

/// Serves each client connection on the event loop that accepted it: the connection's task (reading the
/// request, routing, the route's own code, writing the answer) runs with that loop as its task executor, so a
/// request no longer crosses from the loop to the cooperative pool and back to be written.
///
/// What still crosses threads is what must: the hand-over to the curl thread and the answer coming back from it.
/// Default actors the route calls (the router, a model's pool) run their code on the calling connection's loop
/// too (SE-0417); their isolation is unchanged. Unstructured tasks a route starts do not inherit the preference.
///
/// Nothing on this path may block its thread: the loop also serves every other connection on it.
///
/// The gateway's own requests do not even reach Hummingbird's connection task: a `GatewayChannelHandler` answers
/// them from the pipeline.
struct EventLoopServing<Inner: ServerChildChannel>: ServerChildChannel {
    typealias Value = Inner.Value
    let inner: Inner
    let gateway: GatewayServing

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        inner.setup(channel: channel, logger: logger).flatMapThrowing { [gateway] value in
            // After Hummingbird's connection state handler, so it still sees every request and answer (it closes
            // a connection after its answer on graceful shutdown), and before the async channel.
            let sync = channel.pipeline.syncOperations
            let state = try sync.handler(type: HTTPConnectionStateHandler.self)
            try sync.addHandler(GatewayChannelHandler(serving: gateway, loop: channel.eventLoop), position: .after(state))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await withTaskExecutorPreference(EventLoopTaskExecutor(value.channel.eventLoop)) {
            await inner.handle(value: value, logger: logger)
        }
    }
}

extension HTTPServerBuilder {
    /// HTTP/1.1 as `.http1(configuration:)` serves it, each connection on its own event loop, the gateway's
    /// requests answered from the pipeline.
    static func http1OnEventLoop(configuration: HTTP1Channel.Configuration, gateway: GatewayServing) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            EventLoopServing(inner: HTTP1Channel(responder: responder, configuration: configuration), gateway: gateway)
        }
    }
}

/// A NIO event loop as a Swift task executor: a job enqueued from any thread runs on the loop's thread.
final class EventLoopTaskExecutor: TaskExecutor {
    private let loop: any EventLoop

    init(_ loop: any EventLoop) { self.loop = loop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

extension RouterMethods {
    /// A route for control work that may hold its thread for a moment (reading files, spawning a process,
    /// encoding a whole status document): its handler runs on the cooperative pool, not on the event loop that
    /// serves the connection, so the proxied requests sharing that loop do not wait behind it.
    @discardableResult
    func onPool(_ path: RouterPath, method: HTTPRequest.Method,
                use handler: @Sendable @escaping (Request, Context) async throws -> some ResponseGenerator) -> Self {
        on(path, method: method) { request, context in
            try await withTaskExecutorPreference(globalConcurrentExecutor) { try await handler(request, context) }
        }
    }
}
