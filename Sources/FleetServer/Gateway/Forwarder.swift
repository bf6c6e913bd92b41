import Foundation
import Hummingbird
import HTTPTypes
import NIOCore
import FleetCore
import FleetUpstream
import FleetConfig
import FleetRouting

/// Sends one request to an instance of its model's pool and streams the answer back: picks a member, fails
/// over to another while nothing has reached the client yet, and gives the slot back when the response ends
/// (or the client goes away).
struct Forwarder: Sendable {
    let client: UpstreamClient
    let settings: GatewaySettings
    let metrics: FleetMetrics?

    /// - Parameter connection: the connection the request came in on: when it closes, a queued request leaves the
    ///   queue and the instance's work on it is cancelled (its connection closed) at once.
    func forward(_ request: ForwardRequest, path: String, pool: ModelPool, canonicalName: String,
                 hint: RoutingHint = .none, family: GatewayRoute.Family = .openAI,
                 connection: ClientConnection = .detached) async throws -> Response {
        let received = ContinuousClock.now
        do {
            return try await connection.cancellingOnClose {
                try await attempt(request, path: path, pool: pool, canonicalName: canonicalName, hint: hint,
                                  family: family, received: received, connection: connection)
            }
        } catch {
            let (thrown, refused) = unanswered(error, model: canonicalName, received: received)
            if refused { await pool.recordRefusal() }
            throw thrown
        }
    }

    /// Counts a request no instance answered, and says what its client gets. (A plain function: `forward`'s
    /// frame stays small, see `GatewayRoutes.handle`.)
    @inline(never)
    private func unanswered(_ error: any Error, model: String, received: ContinuousClock.Instant) -> (error: any Error, refused: Bool) {
        switch error {
        case let error as GatewayError:
            // Refused by the gateway (queue full or timed out, every attempt failed): counted, with no instance.
            metrics?.request(model: model, instance: "", status: Int(error.status.code), duration: .now - received,
                             firstByte: nil, tokens: nil)
            return (error, true)
        case is CancellationError:
            // The client left while its request waited in the queue or for the instance's first byte.
            metrics?.request(model: model, instance: "", status: 499, duration: .now - received, firstByte: nil, tokens: nil)
            return (GatewayError(status: .init(code: 499), message: "the client closed the connection", code: "client_closed"), false)
        default:
            return (error, false)
        }
    }

    private func attempt(_ request: ForwardRequest, path: String, pool: ModelPool, canonicalName: String,
                         hint: RoutingHint, family: GatewayRoute.Family, received: ContinuousClock.Instant,
                         connection: ClientConnection) async throws -> Response {
        var excluded: Set<String> = []
        var lastFailure = "no instance answered"
        for _ in 0...settings.retries {
            let lease: Lease
            do {
                lease = try await pool.acquire(excluding: excluded, hint: hint)
            } catch PoolError.exhausted {
                break
            } catch {
                throw Self.refusal(error, model: request.model, lastFailure: lastFailure)
            }

            let upstream: UpstreamStream
            do {
                upstream = try await client.execute(upstreamRequest(request, path: path, lease: lease))
            } catch is CancellationError {
                await lease.release(.cancelled)
                throw CancellationError()
            } catch {
                lastFailure = Self.failure(lease, error)
                await failed(lease, pool: pool, excluded: &excluded)
                continue
            }
            if upstream.status >= 500 {
                lastFailure = Self.failure(lease, status: upstream.status)
                await failed(lease, pool: pool, excluded: &excluded)
                continue
            }
            // An endpoint names its model as it likes; fleet's own instances run under the model's name.
            let rename = request.model != canonicalName || !lease.kind.isManaged ? request.model : nil
            var prefix = BufferedAnswer()
            if !request.stream {
                // Read whole (up to the window) before anything is sent: one that breaks meanwhile is failed over
                // like one that never answered.
                prefix = await BufferedAnswer.read(upstream.body, upTo: upstream.body.window)
                if let broken = prefix.broken {
                    upstream.cancel()
                    if broken is CancellationError {
                        await lease.release(.cancelled)
                        throw CancellationError()
                    }
                    lastFailure = Self.failure(lease, broken)
                    await failed(lease, pool: pool, excluded: &excluded)
                    continue
                }
                if prefix.complete {
                    return await answer(prefix, upstream: upstream, lease: lease, rename: rename, model: canonicalName,
                                        received: received)
                }
            }
            // From here on bytes reach the client: no more retries.
            return response(upstream, prefix: prefix, lease: lease, streaming: request.stream, rename: rename,
                            family: family, model: canonicalName, received: received, connection: connection)
        }
        throw Self.allFailed(lastFailure)
    }

    // The synchronous work of `attempt` sits in functions the compiler may not inline: inlined into an async
    // function, its temporaries become part of that function's frame, which the request's task keeps at its
    // deepest (a `swift_task_alloc` probe showed `attempt`'s frame at 2,112 bytes).

    /// The request to `lease`'s instance.
    @inline(never)
    private func upstreamRequest(_ request: ForwardRequest, path: String, lease: Lease) -> UpstreamRequest {
        // One array, made at its size: the client's forwarded headers between fleet's two.
        var headers: [(name: String, value: String)] = []
        headers.reserveCapacity(request.headers.count + 2)
        headers.append(("Content-Type", "application/json"))
        headers.append(contentsOf: request.headers)
        if let key = request.upstreamKey(lease.baseURL) { headers.append(("Authorization", "Bearer \(key)")) }
        return UpstreamRequest(
            method: "POST", url: lease.baseURL + path,
            headers: headers,
            body: request.body,
            connectTimeout: settings.connectTimeout, idleTimeout: settings.idleTimeout,
            firstByteTimeout: settings.firstByteTimeout,
            // Committed to this instance only once a byte of its answer is there: an instance that dies after its
            // head (a kill during prompt processing) is failed over like one that never answered.
            headWaitsForBody: true, headWaitsForEnd: !request.stream,
            receiveBuffer: request.stream ? UpstreamRequest.streamReceiveBuffer : UpstreamRequest.defaultReceiveBuffer,
            batched: request.stream)
    }

    /// What the client gets when its model's pool refused the request (anything but `exhausted`).
    @inline(never)
    private static func refusal(_ error: any Error, model: String, lastFailure: String) -> any Error {
        switch error {
        case PoolError.queueFull(let maxSize):
            GatewayError(status: .tooManyRequests,
                         message: "model \"\(model)\" is busy: \(maxSize) requests already wait (queue.maxSize); retry later",
                         type: "rate_limit_error", code: "queue_full", retryAfter: 1)
        case PoolError.closed:
            GatewayError(status: .serviceUnavailable,
                         message: "model \"\(model)\" was removed from this fleet (fleet reload) while the request waited; its drain (drainTimeout) is over",
                         type: "server_error", code: "model_removed")
        case PoolError.queueTimeout(let timeout):
            GatewayError(status: .serviceUnavailable,
                         message: "no instance of model \"\(model)\" could take the request within \(timeout.formatted) (queue.timeout); \(lastFailure)",
                         type: "server_error", code: "queue_timeout", retryAfter: 5)
        default:
            error
        }
    }

    @inline(never)
    private static func failure(_ lease: Lease, _ error: any Error) -> String { "\(lease.kind.label): \(error)" }

    @inline(never)
    private static func failure(_ lease: Lease, status: Int) -> String { "\(lease.kind.label) answered HTTP \(status)" }

    @inline(never)
    private static func allFailed(_ lastFailure: String) -> GatewayError {
        GatewayError(status: .badGateway, message: "every attempt failed; last: \(lastFailure)",
                     type: "server_error", code: "upstream_failed")
    }

    @inline(never)
    private func failed(_ lease: Lease, pool: ModelPool, excluded: inout Set<String>) async {
        excluded.insert(lease.memberID)
        await pool.suspend(id: lease.memberID)
        await lease.release(.failure)
    }

    @inline(never)
    private func headers(_ upstream: UpstreamStream, lease: Lease, streaming: Bool) -> HTTPFields {
        // Appended, not set: each name is new, and setting one first looks for it among the others.
        var headers: HTTPFields = [:]
        headers.reserveCapacity(4)
        headers.append(HTTPField(name: Self.instanceHeader, value: lease.kind.label))
        headers.append(HTTPField(name: .contentType,
                                 value: upstream.header("content-type") ?? (streaming ? "text/event-stream" : "application/json")))
        if streaming {
            headers.append(HTTPField(name: .cacheControl, value: "no-cache"))
            headers.append(HTTPField(name: Self.accelBuffering, value: "no"))
        }
        return headers
    }

    /// A whole answer read before anything went to the client: its slot given back first, then sent in one write
    /// (head, body and end).
    @inline(never)
    private func answer(_ read: BufferedAnswer, upstream: UpstreamStream, lease: Lease, rename: String?, model: String,
                        received: ContinuousClock.Instant) async -> Response {
        let figures = AnswerFigures.scan([read.body], head: read.body)
        await lease.release(.success(firstByte: read.firstByte.map { $0 - lease.started }, tokens: figures.completionTokens,
                                     cache: figures.promptCache, promptMsPerToken: figures.promptMsPerToken))
        metrics?.request(model: model, instance: lease.kind.label, status: upstream.status, duration: .now - received,
                         firstByte: read.firstByte.map { $0 - received }, tokens: figures.completionTokens,
                         promptCache: figures.promptCache)
        let body = rename.map { ModelFieldRewriter.rewrite(read.body, to: $0) } ?? read.body
        return Response(status: .init(code: upstream.status), headers: headers(upstream, lease: lease, streaming: false),
                        body: ResponseBody(byteBuffer: body))
    }

    /// - Parameter prefix: what was read of a non-streamed answer before it outgrew the window (sent first).
    @inline(never)
    private func response(_ upstream: UpstreamStream, prefix: BufferedAnswer, lease: Lease, streaming: Bool, rename: String?,
                          family: GatewayRoute.Family, model: String, received: ContinuousClock.Instant, connection: ClientConnection) -> Response {
        let headers = headers(upstream, lease: lease, streaming: streaming)
        let body = upstream.body
        let cancelUpstream = upstream.cancel
        let started = lease.started
        let metrics = self.metrics
        let status = upstream.status
        return Response(status: .init(code: upstream.status), headers: headers, body: ResponseBody { writer in
            // A client that leaves while nothing is being written (a long prompt, a slow token) is noticed by
            // its connection closing: the upstream transfer is cancelled at once, so llama-server stops.
            connection.onClose { cancelUpstream() }
            defer { connection.clearOnClose() }
            var clientGone = false
            // A write to the client failed (it left while the answer was written).
            var writeFailed = false
            var broken: (any Error)?
            var tracker = AnswerTracker(rename: rename, streaming: streaming)
            if streaming, prefix.body.readableBytes == 0, var relaying = writer as? any RelayingBodyWriter {
                // The gateway's own connection: the chunks go from the curl thread straight to it.
                let outcome = await relaying.relay(body, tracker: tracker, cancel: cancelUpstream)
                writer = relaying
                tracker = outcome.tracker
                // A chunk that found the connection closed is a failed write.
                writeFailed = outcome.clientGone
                clientGone = writeFailed
                if !clientGone, let end = outcome.end {
                    clientGone = !connection.isOpen
                    if !clientGone { broken = end }
                }
            } else {
                var pending = prefix.body.readableBytes > 0 ? prefix.body : nil
                var chunks = body.makeAsyncIterator()
                do {
                    while true {
                        let next: ByteBuffer? = if let first = pending.take() { first } else { try await chunks.next() }
                        guard let chunk = next else { break }
                        if let out = tracker.pass(chunk, at: prefix.firstByte ?? .now) { try await write(out, to: &writer, failed: &writeFailed) }
                    }
                } catch {
                    clientGone = writeFailed || !connection.isOpen
                    if !clientGone { broken = error }
                }
            }
            if !clientGone, broken == nil {
                do {
                    for rest in tracker.rest() { try await write(rest, to: &writer, failed: &writeFailed) }
                } catch {
                    clientGone = true
                }
            }
            let firstByte = tracker.firstChunkAt.map { $0 - started }
            if streaming, clientGone || broken != nil, !writeFailed, tracker.tail.last.map(Self.carriesFinalEvent) == true {
                // The client has the whole stream (OpenAI's Python client closes its connection as soon as it reads
                // `[DONE]`): that it left before the instance's transfer ended is no loss.
                clientGone = false
                broken = nil
            }
            // The client went away (or the upstream broke): close the upstream connection now, so llama-server
            // stops generating and frees the slot.
            if clientGone || broken != nil { cancelUpstream() }
            await Self.settle(lease, metrics: metrics, tail: tracker.tail, head: tracker.head, status: status,
                              clientGone: clientGone, broken: broken != nil, firstByte: firstByte, model: model,
                              received: received)
            if let broken {
                // Never end a cut answer as if it were whole: a stream gets an error event its client raises,
                // then (like any cut answer) the connection closes without the final chunk, which every HTTP
                // client reports as an incomplete body.
                let reason = Self.reason(broken, member: lease.kind.label)
                if streaming {
                    try? await writer.write(Self.cutEvent(reason, family: family, atEventBoundary: tracker.atEventBoundary))
                }
                throw AnswerCut(reason: reason)
            }
            if !clientGone && connection.isOpen { try await writer.finish(nil) }
        })
    }

    /// Thrown by a response body that was cut, so the server closes the connection without ending the body.
    struct AnswerCut: Error, CustomStringConvertible {
        var reason: String
        var description: String { "answer cut: \(reason)" }
    }

    // What the body writer does once, at its end, sits in functions the compiler may not inline: inlined, their
    // temporaries would widen the writer's frame (1,008 bytes, measured), which the request's task keeps.

    /// Gives the slot back and counts the answer (its figures read from `tail` and `head` when it is whole).
    @inline(never)
    private static func settle(_ lease: Lease, metrics: FleetMetrics?, tail: [ByteBuffer], head: ByteBuffer?,
                               status: Int, clientGone: Bool, broken: Bool, firstByte: Duration?, model: String,
                               received: ContinuousClock.Instant) async {
        let figures = clientGone || broken ? nil : AnswerFigures.scan(tail, head: head)
        let tokens = figures?.completionTokens
        await lease.release(clientGone ? .cancelled : broken ? .failure
                            : .success(firstByte: firstByte, tokens: tokens, cache: figures?.promptCache,
                                       promptMsPerToken: figures?.promptMsPerToken))
        // A client that left is counted as 499 (nginx's "client closed request"), a broken upstream as 502.
        metrics?.request(model: model, instance: lease.kind.label, status: clientGone ? 499 : broken ? 502 : status,
                         duration: .now - received, firstByte: firstByte.map { $0 + (lease.started - received) },
                         tokens: tokens, promptCache: figures?.promptCache)
    }

    /// The error event that ends a cut stream (after a blank line when the cut fell inside an event).
    @inline(never)
    private static func cutEvent(_ reason: String, family: GatewayRoute.Family, atEventBoundary: Bool) -> ByteBuffer {
        let cut = GatewayError(status: .badGateway, message: "the answer was cut before its end: \(reason)",
                               type: "server_error", code: "upstream_cut")
        var event = atEventBoundary ? ByteBuffer() : ByteBuffer(string: "\n\n")
        var body = cut.event(for: family)
        event.writeBuffer(&body)
        return event
    }

    @inline(never)
    private static func reason(_ error: any Error, member: String) -> String {
        if error is CancellationError { return "\(member) was disconnected by fleet (shutting down)" }
        return "\(error)"
    }

    private static let finalEvents = ["data: [DONE]", "event: message_stop", "event: response.completed"].map { Array($0.utf8) }

    /// Whether `chunk` holds the last event of an OpenAI, Anthropic or Responses stream.
    static func carriesFinalEvent(_ chunk: ByteBuffer) -> Bool {
        chunk.withUnsafeReadableBytes { bytes in finalEvents.contains { findBytes($0, in: bytes) != nil } }
    }

    private static let accelBuffering = HTTPField.Name("X-Accel-Buffering")!
    /// Which replica (or endpoint) answered: `gemma/0`, or the endpoint's URL.
    static let instanceHeader = HTTPField.Name("X-Fleet-Instance")!

    private func write(_ buffer: ByteBuffer, to writer: inout some ResponseBodyWriter, failed: inout Bool) async throws {
        do {
            try await writer.write(buffer)
        } catch {
            failed = true
            throw error
        }
    }
}
