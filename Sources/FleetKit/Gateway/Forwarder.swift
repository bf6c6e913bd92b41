import Foundation
import Hummingbird
import HTTPTypes
import NIOCore

/// Sends one request to an instance of its model's pool and streams the answer back: picks a member, fails
/// over to another while nothing has reached the client yet, and gives the slot back when the response ends
/// (or the client goes away).
struct Forwarder: Sendable {
    let client: UpstreamClient
    let settings: GatewaySettings
    let metrics: FleetMetrics?

    struct FirstByteTimeout: Error {}

    func forward(_ request: CompletionRequest, path: String, pool: ModelPool, canonicalName: String) async throws -> Response {
        let received = ContinuousClock.now
        do {
            return try await attempt(request, path: path, pool: pool, canonicalName: canonicalName, received: received)
        } catch let error as OpenAIError {
            // Refused by the gateway (queue full or timed out, every attempt failed): counted, with no instance.
            metrics?.request(model: canonicalName, instance: "", status: Int(error.status.code),
                             duration: .now - received, firstByte: nil, tokens: nil)
            throw error
        }
    }

    private func attempt(_ request: CompletionRequest, path: String, pool: ModelPool, canonicalName: String,
                         received: ContinuousClock.Instant) async throws -> Response {
        var excluded: Set<String> = []
        var lastFailure = "no instance answered"
        for _ in 0...settings.retries {
            let lease: Lease
            do {
                lease = try await pool.acquire(excluding: excluded)
            } catch PoolError.queueFull(let maxSize) {
                throw OpenAIError(status: .tooManyRequests,
                                  message: "model \"\(request.model)\" is busy: \(maxSize) requests already wait (queue.maxSize); retry later",
                                  type: "rate_limit_error", code: "queue_full", retryAfter: 1)
            } catch PoolError.exhausted {
                break
            } catch PoolError.queueTimeout(let timeout) {
                throw OpenAIError(status: .serviceUnavailable,
                                  message: "no instance of model \"\(request.model)\" could take the request within \(timeout.formatted) (queue.timeout); \(lastFailure)",
                                  type: "server_error", code: "queue_timeout", retryAfter: 5)
            }

            let upstream: UpstreamStream
            do {
                upstream = try await firstByte(of: UpstreamRequest(
                    method: "POST", url: lease.baseURL + path,
                    headers: [("Content-Type", "application/json")],
                    body: Array(request.body.readableBytesView),
                    connectTimeout: settings.connectTimeout, idleTimeout: settings.idleTimeout))
            } catch is CancellationError {
                await lease.release(.cancelled)
                throw CancellationError()
            } catch {
                lastFailure = "\(lease.memberID): \(error)"
                await failed(lease, pool: pool, excluded: &excluded)
                continue
            }
            if upstream.status >= 500 {
                lastFailure = "\(lease.memberID) answered HTTP \(upstream.status)"
                await failed(lease, pool: pool, excluded: &excluded)
                continue
            }
            // From here on bytes reach the client: no more retries.
            let rename = request.model != canonicalName || lease.memberID.hasPrefix("http") ? request.model : nil
            return response(upstream, lease: lease, streaming: request.stream, rename: rename,
                            model: canonicalName, received: received)
        }
        throw OpenAIError(status: .badGateway, message: "every attempt failed; last: \(lastFailure)",
                          type: "server_error", code: "upstream_failed")
    }

    private func failed(_ lease: Lease, pool: ModelPool, excluded: inout Set<String>) async {
        excluded.insert(lease.memberID)
        await pool.suspend(id: lease.memberID)
        await lease.release(.failure)
    }

    /// The upstream's head, or `FirstByteTimeout` after `firstByteTimeout` (which also aborts the transfer).
    private func firstByte(of request: UpstreamRequest) async throws -> UpstreamStream {
        try await withThrowingTaskGroup(of: UpstreamStream?.self) { group in
            group.addTask { try await client.execute(request) }
            group.addTask {
                try await Task.sleep(for: settings.firstByteTimeout)
                throw UpstreamError(kind: .timeout, url: request.url,
                                    detail: "no answer within \(settings.firstByteTimeout.formatted) (gateway.firstByteTimeout)")
            }
            defer { group.cancelAll() }
            return try await group.next()!!
        }
    }

    private func response(_ upstream: UpstreamStream, lease: Lease, streaming: Bool, rename: String?,
                          model: String, received: ContinuousClock.Instant) -> Response {
        var headers: HTTPFields = [:]
        headers[.contentType] = upstream.header("content-type") ?? (streaming ? "text/event-stream" : "application/json")
        if streaming {
            headers[.cacheControl] = "no-cache"
            headers[HTTPField.Name("X-Accel-Buffering")!] = "no"
        }
        let body = upstream.body
        let cancelUpstream = upstream.cancel
        let started = lease.started
        let metrics = self.metrics
        let status = upstream.status
        return Response(status: .init(code: upstream.status), headers: headers, body: ResponseBody { writer in
            var firstByte: Duration?
            var clientGone = false
            var upstreamBroke = false
            var framer = SSEFramer()
            var whole = ByteBuffer()
            // The last two chunks: where llama-server reports how many tokens it generated (TokenCount).
            var tail: [ByteBuffer] = []
            do {
                for try await chunk in body {
                    if firstByte == nil { firstByte = .now - started }
                    if tail.count == 2 { tail.removeFirst() }
                    tail.append(chunk)
                    guard let rename else {
                        try await write(chunk, to: &writer, clientGone: &clientGone)
                        continue
                    }
                    if streaming {
                        for event in framer.feed(chunk) {
                            try await write(ModelFieldRewriter.rewrite(event, to: rename), to: &writer, clientGone: &clientGone)
                        }
                    } else {
                        var chunk = chunk
                        whole.writeBuffer(&chunk)
                    }
                }
                if let rename {
                    if let rest = framer.flush() { try await write(rest, to: &writer, clientGone: &clientGone) }
                    if whole.readableBytes > 0 {
                        try await write(ModelFieldRewriter.rewrite(whole, to: rename), to: &writer, clientGone: &clientGone)
                    }
                }
            } catch {
                if !clientGone { upstreamBroke = true }
            }
            // The client went away (or the upstream broke): close the upstream connection now, so llama-server
            // stops generating and frees the slot.
            if clientGone || upstreamBroke { cancelUpstream() }
            let tokens = clientGone || upstreamBroke ? nil : TokenCount.scan(tail)
            await lease.release(clientGone ? .cancelled : upstreamBroke ? .failure : .success(firstByte: firstByte, tokens: tokens))
            if let metrics {
                // A client that left is counted as 499 (nginx's "client closed request"), a broken upstream as 502.
                let answered = clientGone ? 499 : upstreamBroke ? 502 : status
                metrics.request(model: model, instance: Self.instanceLabel(lease.memberID), status: answered,
                                duration: .now - received, firstByte: firstByte.map { $0 + (started - received) },
                                tokens: tokens)
            }
            if !clientGone { try await writer.finish(nil) }
        })
    }

    /// `gemma/0#2` → `gemma/0`: metrics follow the replica across hot swaps; endpoint URLs stay as they are.
    static func instanceLabel(_ memberID: String) -> String {
        guard !memberID.hasPrefix("http"), let hash = memberID.lastIndex(of: "#") else { return memberID }
        return String(memberID[..<hash])
    }

    private func write(_ buffer: ByteBuffer, to writer: inout some ResponseBodyWriter, clientGone: inout Bool) async throws {
        do {
            try await writer.write(buffer)
        } catch {
            clientGone = true
            throw error
        }
    }
}
