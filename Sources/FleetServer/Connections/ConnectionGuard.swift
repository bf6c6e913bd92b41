import HTTPTypes
import NIOCore
import NIOHTTPTypes
public import FleetConfig
import FleetCore

/// The limits one client connection lives under, from `gateway` in fleet.json.
public struct ConnectionLimits: Sendable, Equatable {
    /// A new connection must send a whole request head within this.
    public var headerTimeout: Duration
    /// A request body may pause this long between bytes.
    public var bodyTimeout: Duration
    /// A connection with no request in progress is closed after this long.
    public var keepAliveTimeout: Duration
    /// A `Content-Length` above this is refused (413) before its body is read.
    public var maxBodySize: Int

    public init(_ gateway: GatewaySettings) {
        headerTimeout = gateway.headerTimeout
        bodyTimeout = gateway.bodyTimeout
        keepAliveTimeout = gateway.keepAliveTimeout
        maxBodySize = gateway.maxBodySize
    }
}

/// Watches one client connection, between the HTTP codec and the application: closes it when a request head
/// or body stalls (`headerTimeout`, `bodyTimeout`) or it sits idle between requests (`keepAliveTimeout`),
/// refuses a declared body over `maxBodySize` with 413 before reading it, and keeps the `ConnectionRegistry`
/// informed (open, busy, closed), which enforces the connection cap and tells requests their client left.
///
/// Lives on the connection's event loop, like every channel handler: not Sendable.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let limits: ConnectionLimits
    private let registry: ConnectionRegistry
    private var id: ConnectionRegistry.ID?
    /// Request heads received whose answer has not ended yet (more than one only when a client pipelines).
    private var pending = 0
    /// A head arrived and its body has not ended.
    private var readingBody = false
    /// The answer asked for the connection to close after it.
    private var closeAfterResponse = false
    /// Refused at the head: everything else the client sends is dropped until the connection closes.
    private var refused = false
    private var timer: Scheduled<Void>?
    /// When the timer fires, and when the connection's current deadline is (nil: none).
    private var timerAt: NIODeadline?
    private var deadline: NIODeadline?

    init(limits: ConnectionLimits, registry: ConnectionRegistry) {
        self.limits = limits
        self.registry = registry
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { opened(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        opened(context)
        context.fireChannelActive()
    }

    private func opened(_ context: ChannelHandlerContext) {
        guard id == nil else { return }
        id = ObjectIdentifier(context.channel)
        registry.opened(context.channel)
        arm(context, after: limits.headerTimeout)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stopTimer()
    }

    func channelInactive(context: ChannelHandlerContext) {
        stopTimer()
        if let id { registry.closed(id) }
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed, let id {
            // The client closed its side (Hummingbird allows half-closed connections, so this is all a close
            // looks like until a write fails): like nginx, take it as the client leaving, and stop its work.
            registry.closed(id)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            if let length = head.headerFields.first(.contentLength).flatMap(Int.init), length > limits.maxBodySize {
                refuseTooLarge(context, length: length, path: head.path ?? "/")
                return
            }
            pending += 1
            readingBody = true
            arm(context, after: limits.bodyTimeout)
        case .body:
            arm(context, after: limits.bodyTimeout)
        case .end:
            readingBody = false
            // The request is whole; the application takes as long as it takes (its own timeouts apply). Only now
            // is the connection safe from eviction: one that trickles a body stays a candidate, or a few thousand
            // of them could hold the listener.
            if let id { registry.setBusy(id, true) }
            disarm()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let response):
            if response.headerFields.first(.connection)?.lowercased() == "close" { closeAfterResponse = true }
            context.write(data, promise: promise)
        case .body:
            context.write(data, promise: promise)
        case .end:
            pending = max(0, pending - 1)
            // Answered before its body was read (an early error): the rest of the body is not worth reading.
            if closeAfterResponse || readingBody {
                context.writeAndFlush(data, promise: promise)
                context.close(promise: nil)
                return
            }
            context.write(data, promise: promise)
            if pending == 0 {
                if let id { registry.setBusy(id, false) }
                arm(context, after: limits.keepAliveTimeout)
            }
        }
    }

    /// 413 at once, before a byte of the body is read, then close: the client said how much it would send.
    private func refuseTooLarge(_ context: ChannelHandlerContext, length: Int, path: String) {
        refused = true
        disarm()
        let error = GatewayError(status: .contentTooLarge,
                                message: "request body of \(length) bytes is larger than \(limits.maxBodySize) bytes (gateway.maxBodySize in fleet.json)",
                                code: "request_too_large")
        // In the shape the route's clients read (Anthropic's on `/v1/messages…`).
        let body = ByteBuffer(string: error.body(for: GatewayRoute.family(of: String(path.prefix { $0 != "?" }))))
        let head = HTTPResponse(status: .contentTooLarge, headerFields: [
            .contentType: "application/json", .contentLength: "\(body.readableBytes)", .connection: "close",
        ])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }

    /// Sets the connection's deadline. One timer serves every deadline a request moves through (head, body,
    /// keep-alive): a later deadline leaves the timer as it is (when it fires early, it re-arms for the rest),
    /// so a request costs no timer scheduling and cancelling per part.
    private func arm(_ context: ChannelHandlerContext, after delay: Duration) {
        let at = NIODeadline.now() + .nanoseconds(Int64(delay.nanoseconds))
        deadline = at
        if let timerAt, timerAt <= at { return }
        timer?.cancel()
        schedule(context, at: at)
    }

    private func schedule(_ context: ChannelHandlerContext, at: NIODeadline) {
        timerAt = at
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: at) { [self] in
            timer = nil
            timerAt = nil
            guard let deadline else { return }
            if deadline > .now() {
                schedule(context, at: deadline)
                return
            }
            self.deadline = nil
            // Still waiting for the client: a stalled head or body, or an idle keep-alive connection.
            if readingBody || pending == 0 {
                if let id { registry.timedOut(id) }
                context.close(promise: nil)
            }
        }
    }

    private func stopTimer() {
        timer?.cancel()
        timer = nil
        timerAt = nil
        deadline = nil
    }

    private func disarm() {
        deadline = nil
    }
}
