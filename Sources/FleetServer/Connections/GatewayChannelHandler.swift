import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes
import Synchronization

/// What the gateway's channel handler answers with: the gateway routes behind the same browser and key checks as
/// everywhere else, as one Hummingbird responder, and the paths it takes.
struct GatewayServing: Sendable {
    let responder: RouterResponder<FleetRequestContext>
    /// `POST` to these paths (the query aside) is answered here; everything else goes on to Hummingbird.
    /// Substrings, so a request's path is looked up without making a string of it.
    let paths: Set<Substring>
    let maxBodySize: Int
    let logger: Logger

    init(responder: RouterResponder<FleetRequestContext>, paths: [String], maxBodySize: Int, logger: Logger) {
        self.responder = responder
        self.paths = Set(paths.map { Substring($0) })
        self.maxBodySize = maxBodySize
        self.logger = logger
    }
}

/// Answers the gateway's requests (`POST` to a route of `GatewayRoute.table`) straight from the channel pipeline,
/// without Hummingbird's async channel bridge: its request reading, its response writer and the per-request
/// machinery around them cost about 40 µs of CPU per request here, against 13 µs for the same answer from a plain
/// NIO handler (docs/benchmarks.md). The request itself goes through the same `RouterResponder` — browser guard,
/// keys, the gateway route — as it would through Hummingbird, and its answer is written part by part to this
/// channel, waiting while the client does not read.
///
/// Sits after Hummingbird's `HTTPConnectionStateHandler` (and fleet's `ConnectionGuard`), so both see every
/// request and answer as before: timeouts, the connection cap, closing after an answer on graceful shutdown.
/// Requests for other routes go on to Hummingbird. Answers leave in the order their requests came: a request
/// that arrives while an answer is under way waits (and the connection is not read further) until it is done;
/// a gateway request that arrives while Hummingbird still owes an answer is left to Hummingbird.
///
/// Lives on the connection's event loop, like every channel handler; its request task runs there too (the loop
/// is its task executor) and reaches it through `NIOLoopBound`.
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
        case collecting(HTTPRequest, ByteBuffer)
    }

    private let serving: GatewayServing
    private let executor: EventLoopTaskExecutor
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
    /// The answer's writer waits for the channel to become writable.
    private var writable: CheckedContinuation<Void, any Error>?

    init(serving: GatewayServing, loop: any EventLoop) {
        self.serving = serving
        self.executor = EventLoopTaskExecutor(loop)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        wakeWriter(throwing: ChannelError.ioOnClosedChannel)
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
            if case .head(let head) = part, owedByHummingbird == 0, isGatewayRequest(head) {
                reading = .collecting(head, context.channel.allocator.buffer(capacity: 0))
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
        case .collecting(let head, var body):
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
                reading = .collecting(head, body)
            case .end:
                reading = .idle
                answer(Request(head: head, body: RequestBody(buffer: body)), context: context)
            }
        }
    }

    private func isGatewayRequest(_ head: HTTPRequest) -> Bool {
        guard head.method == .post, let path = head.path else { return false }
        return serving.paths.contains(path.prefix { $0 != "?" })
    }

    func read(context: ChannelHandlerContext) {
        // While requests wait their turn, the connection is not read further: a client that pipelines cannot
        // make the controller buffer without end.
        if deferred.isEmpty { context.read() } else { readHeld = true }
    }

    // MARK: Answers

    private func answer(_ request: Request, context: ChannelHandlerContext) {
        answering = true
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let serving = serving
        let source = ApplicationRequestContextSource(channel: context.channel, logger: serving.logger)
        Task(executorPreference: executor) {
            let response: Response
            do {
                response = try await serving.responder.respond(to: request, context: FleetRequestContext(source: source))
            } catch {
                serving.logger.debug("gateway request failed without an answer", metadata: ["error": "\(error)"])
                response = Response(status: .internalServerError)
            }
            let closeAfter = request.headers[.connection]?.lowercased() == "close"
            var head = response.head
            head.headerFields[.date] = HTTPDate.now()
            head.headerFields[.server] = "fleet"
            let writer = ChannelBodyWriter(handler: bound, head: head, length: response.body.contentLength)
            do {
                try await response.body.write(writer)
                bound.value.answered(close: closeAfter)
            } catch {
                // A body that breaks after its head went out ends without its last chunk: the client must not
                // take a cut answer as whole.
                bound.value.answered(close: true)
            }
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

    fileprivate func write(_ part: HTTPResponsePart, flush: Bool) throws {
        guard let context, context.channel.isActive else { throw ChannelError.ioOnClosedChannel }
        if flush {
            context.writeAndFlush(wrapOutboundOut(part), promise: nil)
        } else {
            context.write(wrapOutboundOut(part), promise: nil)
        }
    }

    fileprivate var isWritable: Bool { context?.channel.isWritable ?? true }

    fileprivate func waitUntilWritable(_ continuation: CheckedContinuation<Void, any Error>) {
        guard let context, context.channel.isActive else {
            continuation.resume(throwing: ChannelError.ioOnClosedChannel)
            return
        }
        if context.channel.isWritable {
            continuation.resume()
        } else {
            writable = continuation
        }
    }

    private func wakeWriter(throwing error: (any Error)? = nil) {
        guard let waiting = writable else { return }
        writable = nil
        if let error { waiting.resume(throwing: error) } else { waiting.resume() }
    }

    // MARK: Hummingbird's side and the channel's events

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            owedByHummingbird = max(0, owedByHummingbird - 1)
        }
        context.write(data, promise: promise)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { wakeWriter() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        wakeWriter(throwing: ChannelError.ioOnClosedChannel)
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

/// Writes a gateway answer to its channel: the head with the first part of the body, each part flushed as it
/// comes (a stream's events reach the client at once) except the one that completes a declared length, whose
/// end follows at once; waits while the client does not read, as Hummingbird's writer does.
private struct ChannelBodyWriter: ResponseBodyWriter {
    let handler: NIOLoopBound<GatewayChannelHandler>
    var head: HTTPResponse?
    let length: Int?
    var written = 0

    init(handler: NIOLoopBound<GatewayChannelHandler>, head: HTTPResponse, length: Int?) {
        self.handler = handler
        self.head = head
        self.length = length
    }

    mutating func write(_ buffer: ByteBuffer) async throws {
        if !handler.value.isWritable {
            let handler = handler
            try await withCheckedThrowingContinuation { handler.value.waitUntilWritable($0) }
        }
        let handler = handler.value
        if let head {
            try handler.write(.head(head), flush: false)
            self.head = nil
        }
        written += buffer.readableBytes
        try handler.write(.body(buffer), flush: length.map { written < $0 } ?? true)
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        let handler = handler.value
        if let head { try handler.write(.head(head), flush: false) }
        try handler.write(.end(trailingHeaders), flush: true)
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
