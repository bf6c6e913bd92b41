import Hummingbird
import HummingbirdCore
import Logging
import NIOCore

/// Hummingbird's HTTP/1.1 channel with a `GatewayChannelHandler` in each connection's pipeline: the gateway's
/// requests are answered there, everything else by Hummingbird's connection task as before.
struct GatewayPipeline<Inner: ServerChildChannel>: ServerChildChannel {
    typealias Value = Inner.Value
    let inner: Inner
    let gateway: GatewayServing

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        inner.setup(channel: channel, logger: logger).flatMapThrowing { [gateway] value in
            // After Hummingbird's connection state handler, so it still sees every request and answer (it closes
            // a connection after its answer on graceful shutdown), and before the async channel.
            let sync = channel.pipeline.syncOperations
            let state = try sync.handler(type: HTTPConnectionStateHandler.self)
            let writes = gateway.loopWrites.writes(for: channel.eventLoop)
            try sync.addHandler(GatewayChannelHandler(serving: gateway, writes: writes), position: .after(state))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// HTTP/1.1 as `.http1(configuration:)` serves it, the gateway's requests answered from the pipeline.
    static func http1(configuration: HTTP1Channel.Configuration, gateway: GatewayServing) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            GatewayPipeline(inner: HTTP1Channel(responder: responder, configuration: configuration), gateway: gateway)
        }
    }
}
