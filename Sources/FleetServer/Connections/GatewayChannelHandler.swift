import FleetUpstream
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes
import Synchronization

/// Answers the gateway's requests (`POST` to a route of `GatewayRoute.table`) from the channel pipeline, without
/// Hummingbird's async channel bridge (its request reading, its response writer and the machinery around them:
/// docs/benchmarks.md). The request goes through the same browser guard, key check and gateway route as it would
/// through Hummingbird (`GatewayServing`), and its answer is written to this channel part by part, waiting while
/// the client does not read.
///
/// Sits after Hummingbird's `HTTPConnectionStateHandler` (and fleet's `ConnectionGuard`), so both see every
/// request and answer as before: timeouts, the connection cap, closing after an answer on graceful shutdown.
/// Requests for other routes go on to Hummingbird. Answers leave in the order their requests came: a request
/// that arrives while an answer is under way waits (and the connection is not read further) until it is done;
/// a gateway request that arrives while Hummingbird still owes an answer is left to Hummingbird.
///
/// The handler's state lives on the connection's event loop, like every channel handler's. A request's work runs
/// in a task on Swift's cooperative pool, as Hummingbird's does, never on the loop: the actors it calls (a model's
/// pool) would then run other tasks' work on the loop thread, and measured that way it gained nothing while
/// requests during a short restart finished later (docs/architecture.md, "Threads a request crosses"). The task
/// reaches the handler only through the loop (`EventLoop.execute`) and the connection's `AnswerOutbox`.
final class GatewayChannelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private enum Reading {
        case idle
        /// The parts of a request Hummingbird answers, until its end.
        case passing
        /// A gateway request, until its end.
        case collecting(HTTPRequest, GatewayRoute, ByteBuffer)
    }

    private let serving: GatewayServing
    private var context: ChannelHandlerContext?
    private var reading = Reading.idle
    /// A gateway answer is under way.
    private var answering = false
    /// Requests passed on to Hummingbird whose answer has not ended.
    private var owedByHummingbird = 0
    /// Parts that came while an answer was under way, in order.
    private var deferred: [HTTPRequestPart] = []
    /// A read the channel asked for while parts were deferred.
    private var readHeld = false
    /// What the answer's task hands to the loop.
    private let outbox = AnswerOutbox()
    /// How the answer asks the loop to write what is in the outbox: with the loop's other connections.
    private let writes: LoopWrites

    /// - Parameter writes: the `LoopWrites` of the connection's event loop.
    init(serving: GatewayServing, writes: LoopWrites) {
        self.serving = serving
        self.writes = writes
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        outbox.set(writable: context.channel.isWritable)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        outbox.close()
    }

    // MARK: Requests

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if answering || !deferred.isEmpty {
            deferred.append(part)
            return
        }
        take(part, context: context)
    }

    private func take(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch reading {
        case .idle:
            if case .head(let head) = part, owedByHummingbird == 0, let route = serving.route(of: head) {
                reading = .collecting(head, route, context.channel.allocator.buffer(capacity: 0))
                return
            }
            if case .head = part {
                owedByHummingbird += 1
                reading = .passing
            }
            context.fireChannelRead(wrapInboundOut(part))
        case .passing:
            if case .end = part { reading = .idle }
            context.fireChannelRead(wrapInboundOut(part))
        case .collecting(let head, let route, var body):
            switch part {
            case .head:
                // Not possible from NIO's decoder; drop the request rather than guess.
                reading = .idle
                context.close(promise: nil)
            case .body(var chunk):
                reading = .idle  // drop the reference while appending, so `body` stays uniquely owned
                // One byte past the limit is enough for the route to refuse it (413) as it would any too-large body.
                let room = serving.maxBodySize + 1 - body.readableBytes
                if room > 0 {
                    var slice = chunk.readSlice(length: min(room, chunk.readableBytes)) ?? chunk
                    body.writeBuffer(&slice)
                }
                reading = .collecting(head, route, body)
            case .end:
                reading = .idle
                answer(Request(head: head, body: RequestBody(buffer: body)), body: body, route: route, context: context)
            }
        }
    }

    func read(context: ChannelHandlerContext) {
        // While requests wait their turn, the connection is not read further: a client that pipelines cannot
        // make the controller buffer without end.
        if deferred.isEmpty { context.read() } else { readHeld = true }
    }

    // MARK: Answers

    /// - Parameter body: the request's body, as read (the route takes it as it is, not through `request.body`'s
    ///   stream).
    private func answer(_ request: Request, body: ByteBuffer, route: GatewayRoute, context: ChannelHandlerContext) {
        answering = true
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loop = context.eventLoop
        let outbox = outbox
        let serving = serving
        let writes = writes
        let channel = context.channel
        Task {
            let response = await serving.respond(to: request, body: body, route: route, channel: channel)
            var close = request.headers.first(.connection)?.lowercased() == "close"
            var head = response.head
            head.headerFields[.date] = HTTPDate.now()
            head.headerFields[.server] = "fleet"
            let writer = ChannelBodyWriter(handler: bound, writes: writes, outbox: outbox, head: head,
                                           length: response.body.contentLength)
            do {
                try await response.body.write(writer)
            } catch {
                // A body that breaks after its head went out ends without its last chunk: the client must not
                // take a cut answer as whole.
                close = true
            }
            // After the answer's writes, which the loop runs in the order they were given.
            loop.execute { [close] in bound.value.answered(close: close) }
        }
    }

    /// The answer has ended (or broken): the next request may go.
    fileprivate func answered(close: Bool) {
        answering = false
        guard let context else { return }
        if close {
            context.close(promise: nil)
            return
        }
        let replayed = !deferred.isEmpty
        while !answering, !deferred.isEmpty {
            take(deferred.removeFirst(), context: context)
        }
        // Outside a read from the socket: Hummingbird's async channel hands what it was given on read-complete.
        if replayed { context.fireChannelReadComplete() }
        if deferred.isEmpty, readHeld {
            readHeld = false
            context.read()
        }
    }

    /// Writes what the answer's task put in the outbox, flushed once; nothing once the channel has closed.
    func writeOutbox() {
        let parts = outbox.take()
        guard let context, context.channel.isActive, !parts.isEmpty else { return }
        for part in parts { context.write(wrapOutboundOut(part), promise: nil) }
        context.flush()
    }

    // MARK: Hummingbird's side and the channel's events

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            owedByHummingbird = max(0, owedByHummingbird - 1)
        }
        context.write(data, promise: promise)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        outbox.set(writable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        outbox.close()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A parse error while an answer is under way: Hummingbird would answer 400 in the middle of it. The
        // connection cannot be read on either way.
        if answering {
            context.close(promise: nil)
            return
        }
        context.fireErrorCaught(error)
    }
}

/// Writes a gateway answer to its channel from the answer's task: each part goes to the loop as it comes (a
/// stream's events reach the client at once), except the one that completes a declared length, which waits for
/// the end so that a whole answer (head, body, end) crosses to the loop once. Waits while the client does not
/// read (`AnswerOutbox`). A stream can instead come straight from the curl thread (`relay`).
private struct ChannelBodyWriter: RelayingBodyWriter {
    let handler: NIOLoopBound<GatewayChannelHandler>
    let writes: LoopWrites
    let outbox: AnswerOutbox
    var head: HTTPResponse?
    let length: Int?
    var written = 0
    /// The part that completes the declared length, sent with the end.
    var last: ByteBuffer?

    init(handler: NIOLoopBound<GatewayChannelHandler>, writes: LoopWrites, outbox: AnswerOutbox, head: HTTPResponse,
         length: Int?) {
        self.handler = handler
        self.writes = writes
        self.outbox = outbox
        self.head = head
        self.length = length
    }

    mutating func write(_ buffer: ByteBuffer) async throws {
        try await outbox.ready()
        written += buffer.readableBytes
        if let length, written >= length, last == nil {
            last = buffer
            return
        }
        let head = self.head.take()
        var body = buffer
        if var held = last.take() {
            held.writeBuffer(&body)
            body = held
        }
        send(head, body, end: nil)
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        try await outbox.ready()
        send(head, last, end: .some(trailingHeaders))
    }

    mutating func relay(_ body: UpstreamBody, tracker: AnswerTracker, cancel: @escaping @Sendable () -> Void) async
        -> AnswerRelay.Outcome {
        let control = body.relayControl
        let (handler, writes) = (handler, writes)
        let relay = AnswerRelay(outbox: outbox, head: head.take(), tracker: tracker,
                                schedule: { writes.schedule(handler) }, cancel: cancel)
        outbox.startRelay(.init(resume: { control.resume() }, released: { control.delivered($0) }))
        body.relay(to: relay)
        let outcome = await withTaskCancellationHandler {
            await relay.outcome()
        } onCancel: {
            cancel()
        }
        head = outcome.head
        return outcome
    }

    private func send(_ head: HTTPResponse?, _ body: ByteBuffer?, end: HTTPFields??) {
        guard outbox.put(head, body, end: end) else { return }
        writes.schedule(handler)
    }
}
