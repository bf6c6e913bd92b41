import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes
import Synchronization

/// What the gateway's channel handler answers with: the gateway's routes behind the same browser and key checks
/// as every other route, called directly (no router and no middleware chain: their async frames would be part of
/// every request's task, which keeps them for as long as it streams). One for the server, shared by every
/// connection's handler (a copy in each was 456 bytes per connection).
final class GatewayServing: Sendable {
    let browserGuard: BrowserGuard<FleetRequestContext>
    let keyCheck: APIKeyMiddleware<FleetRequestContext>
    let routes: GatewayRoutes
    /// `POST` to these paths (the query aside) is answered here; everything else goes on to Hummingbird.
    /// Substrings, so a request's path is looked up without making a string of it.
    let table: [Substring: GatewayRoute]
    let maxBodySize: Int
    let logger: Logger

    init(browserGuard: BrowserGuard<FleetRequestContext>, keyCheck: APIKeyMiddleware<FleetRequestContext>,
         routes: GatewayRoutes, maxBodySize: Int, logger: Logger) {
        self.browserGuard = browserGuard
        self.keyCheck = keyCheck
        self.routes = routes
        self.table = Dictionary(uniqueKeysWithValues: GatewayRoute.table.map { (Substring($0.path), $0) })
        self.maxBodySize = maxBodySize
        self.logger = logger
    }

    /// `route`'s answer to `request`, or the checks' refusal.
    func respond(to request: Request, route: GatewayRoute, context: FleetRequestContext) async -> Response {
        if let refused = browserGuard.refused(request) ?? keyCheck.refused(request) { return refused }
        return await routes.respond(to: request, route: route, context: context)
    }

    /// The gateway route a request is for, if it is a `POST` to one.
    func route(of head: HTTPRequest) -> GatewayRoute? {
        guard head.method == .post, let path = head.path else { return nil }
        return table[path.prefix { $0 != "?" }]
    }
}

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
/// in a task on Swift's cooperative pool, as Hummingbird's does, never on the loop: the actors it calls (the
/// router, a model's pool) would otherwise run other tasks' work on the loop thread, which stalled the pools and
/// the supervisor under load (docs/architecture.md, "Threads a request crosses"). The task reaches the handler
/// only through the loop (`EventLoop.execute`) and the connection's `AnswerOutbox`.
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

    init(serving: GatewayServing) {
        self.serving = serving
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
                answer(Request(head: head, body: RequestBody(buffer: body)), route: route, context: context)
            }
        }
    }

    func read(context: ChannelHandlerContext) {
        // While requests wait their turn, the connection is not read further: a client that pipelines cannot
        // make the controller buffer without end.
        if deferred.isEmpty { context.read() } else { readHeld = true }
    }

    // MARK: Answers

    private func answer(_ request: Request, route: GatewayRoute, context: ChannelHandlerContext) {
        answering = true
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loop = context.eventLoop
        let outbox = outbox
        let serving = serving
        let source = ApplicationRequestContextSource(channel: context.channel, logger: serving.logger)
        Task {
            let response = await serving.respond(to: request, route: route, context: FleetRequestContext(source: source))
            var close = request.headers[.connection]?.lowercased() == "close"
            var head = response.head
            head.headerFields[.date] = HTTPDate.now()
            head.headerFields[.server] = "fleet"
            let writer = ChannelBodyWriter(handler: bound, loop: loop, outbox: outbox, head: head,
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
    fileprivate func writeOutbox() {
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

/// What a connection's answer hands from its task to the loop, and whether the channel takes more: the one state
/// shared between the two, behind one lock. The task puts parts in; the loop takes everything there in one go
/// (one wake-up of the loop and one flush for what came meanwhile: a stream's events that arrive while the loop is
/// busy leave together) and reports the channel's writability and its closing.
///
/// The task waits while the channel is not writable (the client does not read: NIO's high water mark, 64 KiB),
/// or while `maxWaiting` bytes it put in have not reached the channel yet, so what a connection holds stays
/// bounded even when the loop runs late.
final class AnswerOutbox: Sendable {
    static let maxWaiting = 64 * 1024

    private struct State {
        var writable = true
        var closed = false
        /// Parts put in that the loop has not taken yet, and their body bytes.
        var parts: [HTTPResponsePart] = []
        var waiting = 0
        /// The loop was asked to take them.
        var scheduled = false
        var waiter: CheckedContinuation<Void, any Error>?

        var open: Bool { writable && waiting < AnswerOutbox.maxWaiting }
    }

    private let state = Mutex(State())

    /// The channel's writability changed (on the loop).
    func set(writable: Bool) {
        let waiter: CheckedContinuation<Void, any Error>? = state.withLock { state in
            state.writable = writable
            return state.open ? state.waiter.take() : nil
        }
        waiter?.resume()
    }

    /// Puts the parts of an answer in; returns whether the loop must be asked to take them (it was not yet).
    func put(_ head: HTTPResponse?, _ body: ByteBuffer?, end: HTTPFields??) -> Bool {
        state.withLock { state in
            if let head { state.parts.append(.head(head)) }
            if let body {
                state.parts.append(.body(body))
                state.waiting += body.readableBytes
            }
            if let end { state.parts.append(.end(end)) }
            defer { state.scheduled = true }
            return !state.scheduled
        }
    }

    /// Everything put in so far (on the loop, as it writes them to the channel).
    func take() -> [HTTPResponsePart] {
        let (parts, waiter): ([HTTPResponsePart], CheckedContinuation<Void, any Error>?) = state.withLock { state in
            // Swapped out, not copied and emptied: an idle connection keeps no array.
            var parts: [HTTPResponsePart] = []
            swap(&parts, &state.parts)
            state.waiting = 0
            state.scheduled = false
            return (parts, state.open ? state.waiter.take() : nil)
        }
        waiter?.resume()
        return parts
    }

    func close() {
        let waiter: CheckedContinuation<Void, any Error>? = state.withLock { state in
            state.closed = true
            state.parts.removeAll()
            return state.waiter.take()
        }
        waiter?.resume(throwing: ChannelError.ioOnClosedChannel)
    }

    /// Returns at once while the channel takes writes, else once it does again; throws once it has closed.
    func ready() async throws {
        enum Now { case go, closed, wait }
        let now: Now = state.withLock { $0.closed ? .closed : $0.open ? .go : .wait }
        switch now {
        case .go: return
        case .closed: throw ChannelError.ioOnClosedChannel
        case .wait:
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let now: Now = state.withLock { state in
                    if state.closed { return .closed }
                    if state.open { return .go }
                    state.waiter = continuation
                    return .wait
                }
                switch now {
                case .go: continuation.resume()
                case .closed: continuation.resume(throwing: ChannelError.ioOnClosedChannel)
                case .wait: break
                }
            }
        }
    }
}

/// Writes a gateway answer to its channel from the answer's task: each part goes to the loop as it comes (a
/// stream's events reach the client at once), except the one that completes a declared length, which waits for
/// the end so that a whole answer (head, body, end) crosses to the loop once. Waits while the client does not
/// read (`AnswerOutbox`).
private struct ChannelBodyWriter: ResponseBodyWriter {
    let handler: NIOLoopBound<GatewayChannelHandler>
    let loop: any EventLoop
    let outbox: AnswerOutbox
    var head: HTTPResponse?
    let length: Int?
    var written = 0
    /// The part that completes the declared length, sent with the end.
    var last: ByteBuffer?

    init(handler: NIOLoopBound<GatewayChannelHandler>, loop: any EventLoop, outbox: AnswerOutbox, head: HTTPResponse,
         length: Int?) {
        self.handler = handler
        self.loop = loop
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

    private func send(_ head: HTTPResponse?, _ body: ByteBuffer?, end: HTTPFields??) {
        guard outbox.put(head, body, end: end) else { return }
        let handler = handler
        loop.execute { handler.value.writeOutbox() }
    }
}

/// The `Date` header's value, made once a second.
enum HTTPDate {
    private static let cache = Mutex<(second: time_t, value: String)>((0, ""))

    static func now() -> String {
        let second = time(nil)
        return cache.withLock { cached in
            if cached.second != second {
                var parts = tm()
                var now = second
                gmtime_r(&now, &parts)
                var text = [CChar](repeating: 0, count: 64)
                let count = strftime(&text, text.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
                cached = (second, String(decoding: text.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
            return cached.value
        }
    }
}
