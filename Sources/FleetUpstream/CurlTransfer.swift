internal import CCurl
import Foundation
import NIOCore
import FleetCore

/// Where a transfer delivers: the head once (status and headers, with the body that streams on), then body
/// chunks into the body's window.
struct TransferSink: Sendable {
    let head: @Sendable (Result<UpstreamStream, any Error>) -> Void
    let body: UpstreamBody
    let cancel: @Sendable () -> Void
    let counters: UpstreamCounters
}

/// One easy handle and where its response goes. Confined to the curl thread: created, driven by curl's
/// callbacks and destroyed there.
final class CurlTransfer {
    let easy: UnsafeMutableRawPointer
    private let url: String
    private let deliverHead: @Sendable (Result<UpstreamStream, any Error>) -> Void
    private let handoff: UpstreamBody.Handoff
    private let cancel: @Sendable () -> Void
    private let counters: UpstreamCounters
    /// Held only until the head is delivered: afterwards the consumer alone keeps the body alive, so dropping
    /// it cancels the transfer.
    private var body: UpstreamBody?
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private var responseHeaders: [(name: String, value: String)] = []
    private var headSent = false
    /// After the head, the transfer fails when no byte arrives for this long (checked by the loop).
    let idleTimeout: Duration?
    /// Before the head, the transfer fails when it has not come after this long (checked by the loop).
    let firstByteTimeout: Duration?
    /// The head goes out with the first body byte (or at the end of an empty body), not before.
    private let headWaitsForBody: Bool
    /// … or until the body ends or half the window came.
    private let headWaitsForEnd: Bool
    /// Body bytes received so far.
    private var received = 0
    private let started = ContinuousClock.now
    /// When the last byte arrived.
    private(set) var lastActivity = ContinuousClock.now
    /// The consumer's window is full: curl holds the transfer until the consumer takes some.
    private(set) var paused = false

    /// A stream that tolerates the loop's lingering (`UpstreamRequest.batched`).
    let batched: Bool

    /// Whether the loop must look at this transfer's clock.
    var hasDeadline: Bool { idleTimeout != nil || firstByteTimeout != nil }

    /// Where the handle goes back when the transfer is over.
    private let handles: CurlEasyHandles
    /// Where a relayed body that received something in this pass is noted, for the loop to flush after it.
    private let relayFlushes: CurlRelayFlushes

    init(request: UpstreamRequest, sink: TransferSink, handles: CurlEasyHandles, relayFlushes: CurlRelayFlushes) throws(UpstreamError) {
        guard let easy = handles.take() else {
            throw UpstreamError(kind: .invalidRequest, url: request.url, detail: "curl_easy_init failed")
        }
        self.easy = easy
        self.handles = handles
        self.relayFlushes = relayFlushes
        self.url = request.url
        self.idleTimeout = request.idleTimeout
        self.firstByteTimeout = request.firstByteTimeout
        self.headWaitsForBody = request.headWaitsForBody || request.headWaitsForEnd
        self.headWaitsForEnd = request.headWaitsForEnd
        self.batched = request.batched
        self.deliverHead = sink.head
        self.handoff = sink.body.handoff
        self.cancel = sink.cancel
        self.counters = sink.counters
        self.body = sink.body
        let context = Unmanaged.passUnretained(self).toOpaque()

        var ok = fleet_easy_setopt_string(easy, CURLOPT_URL, request.url) == CURLE_OK
        ok = ok && fleet_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1) == CURLE_OK
        // Instances are on loopback or a LAN; an http_proxy in the environment must not capture them.
        ok = ok && fleet_easy_setopt_string(easy, CURLOPT_NOPROXY, "*") == CURLE_OK
        ok = ok && fleet_easy_setopt_long(easy, CURLOPT_BUFFERSIZE, min(max(request.receiveBuffer, 1024), 512 * 1024)) == CURLE_OK
        ok = ok && fleet_easy_setopt_long(easy, CURLOPT_TCP_NODELAY, 1) == CURLE_OK
        ok = ok && fleet_easy_setopt_sockopt(easy, curlSocketOptions) == CURLE_OK
        ok = ok && fleet_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, request.connectTimeout.milliseconds) == CURLE_OK
        if let total = request.totalTimeout {
            ok = ok && fleet_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, max(1, total.milliseconds)) == CURLE_OK
        }
        ok = ok && fleet_easy_setopt_callback(easy, CURLOPT_WRITEFUNCTION, curlWriteCallback) == CURLE_OK
        ok = ok && fleet_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, context) == CURLE_OK
        ok = ok && fleet_easy_setopt_callback(easy, CURLOPT_HEADERFUNCTION, curlHeaderCallback) == CURLE_OK
        ok = ok && fleet_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, context) == CURLE_OK

        var headers = request.headers
        if let body = request.body {
            ok = ok && fleet_easy_setopt_long(easy, CURLOPT_POSTFIELDSIZE, body.readableBytes) == CURLE_OK
            ok = ok && body.withUnsafeReadableBytes { bytes in
                fleet_easy_setopt_pointer(easy, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress)) == CURLE_OK
            }
            // No "Expect: 100-continue" round trip before the body.
            headers.append((name: "Expect", value: ""))
        }
        switch request.method.uppercased() {
        case "GET" where request.body == nil: break
        case "POST" where request.body != nil: break
        case let method:
            ok = ok && fleet_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, method) == CURLE_OK
        }
        for header in headers {
            headerList = curl_slist_append(headerList, header.value.isEmpty ? "\(header.name):" : "\(header.name): \(header.value)")
        }
        if let headerList {
            ok = ok && fleet_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, headerList) == CURLE_OK
        }
        guard ok else {
            cleanup()
            throw UpstreamError(kind: .invalidRequest, url: request.url, detail: "curl refused an option")
        }
    }

    deinit {
        if paused { counters.paused(-1) }
        cleanup()
    }

    private var cleanedUp = false
    private func cleanup() {
        guard !cleanedUp else { return }
        cleanedUp = true
        handles.give(easy)
        curl_slist_free_all(headerList)
        headerList = nil
    }

    fileprivate func receivedHeader(_ line: UnsafeRawBufferPointer) {
        var end = line.count
        while end > 0, line[end - 1] == UInt8(ascii: "\r") || line[end - 1] == UInt8(ascii: "\n") { end -= 1 }
        let line = UnsafeRawBufferPointer(rebasing: line[..<end])
        if line.starts(with: "HTTP/".utf8) {
            responseHeaders.removeAll()  // a new response (after a 100 Continue or a redirect)
        } else if line.isEmpty {
            var status = 0
            _ = fleet_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
            if status >= 200 && !headWaitsForBody { sendHead(status: status) }
        } else if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
            var valueStart = colon + 1
            while valueStart < line.count, line[valueStart] == UInt8(ascii: " ") || line[valueStart] == UInt8(ascii: "\t") {
                valueStart += 1
            }
            responseHeaders.append((name: String(decoding: line[..<colon], as: UTF8.self),
                                    value: String(decoding: line[valueStart...], as: UTF8.self)))
        }
    }

    /// Whether the transfer missed its deadline at `now`: silent longer than its idle timeout since its head
    /// (a paused transfer is not silent: its client is), or headless past its first-byte timeout.
    func missedDeadline(at now: ContinuousClock.Instant) -> Bool {
        if headSent || received > 0 {
            guard let idleTimeout, !paused else { return false }
            return now - lastActivity > idleTimeout
        }
        guard let firstByteTimeout else { return false }
        return now - started > firstByteTimeout
    }

    func failDeadline() {
        let detail = headSent || received > 0
            ? "no data for \(idleTimeout?.formatted ?? "-") (gateway.idleTimeout)"
            : "no answer within \(firstByteTimeout?.formatted ?? "-") (gateway.firstByteTimeout)"
        finish(throwing: UpstreamError(kind: .timeout, url: url, detail: detail))
    }

    /// Offers received bytes to the body; false (nothing taken) pauses the transfer until `resume()`.
    fileprivate func receivedBody(_ bytes: UnsafeRawBufferPointer) -> Bool {
        lastActivity = .now
        // The chunk is in the body before the head goes out, so whoever gets the head finds it there.
        let offered = handoff.offered(bytes)
        if offered == .takenForRelay { relayFlushes.due.append(self) }
        guard offered != .refused else {
            if !paused {
                paused = true
                counters.paused(1)
            }
            // Whoever waits for the head must have it to take from the full window.
            if !headSent { sendHead() }
            return false
        }
        received += bytes.count
        if !headSent, !headWaitsForEnd || received >= handoff.window / 2 { sendHead() }
        return true
    }

    private func sendHead() {
        var status = 0
        _ = fleet_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        sendHead(status: status)
    }

    /// The consumer took from a full window, or the relay can take bytes again: what waits goes to the relay, and
    /// curl goes on (and may deliver the held bytes right away).
    func resume() {
        guard handoff.flushRelay(), paused else { return }
        paused = false
        counters.paused(-1)
        lastActivity = .now
        _ = fleet_easy_unpause(easy)
    }

    private func sendHead(status: Int) {
        guard !headSent else { return }
        headSent = true
        guard let body else { return }
        self.body = nil
        deliverHead(.success(UpstreamStream(status: status, headers: responseHeaders, body: body, cancel: cancel)))
    }

    /// The transfer ended: deliver the outcome. Called by the loop after it removed the handle.
    func complete(_ code: CURLcode) {
        guard code == CURLE_OK else {
            finish(throwing: Self.error(for: code, url: url, detail: String(cString: curl_easy_strerror(code))))
            return
        }
        if !headSent { sendHead() }
        handoff.finish(nil)
    }

    /// Fails the transfer: the caller still waiting for the head gets the error, else the body stream does.
    func finish(throwing error: any Error) {
        if !headSent {
            headSent = true
            body = nil
            deliverHead(.failure(error))
        }
        handoff.finish(error)
    }

    static func error(for code: CURLcode, url: String, detail: String) -> UpstreamError {
        let kind: UpstreamError.Kind = switch code {
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST: .connectFailed
        case CURLE_OPERATION_TIMEDOUT: .timeout
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL: .invalidRequest
        default: .transferBroken
        }
        return UpstreamError(kind: kind, url: url, detail: detail)
    }
}

@available(*, unavailable)
extension CurlTransfer: Sendable {}

/// The relayed bodies that received something in the curl loop's current pass: the loop hands each one's bytes
/// to its relay once, after the pass (`UpstreamBody.Handoff.flushRelay`), and goes on with a transfer that the
/// pass paused on a full window when the relay took it all. Confined to the curl thread.
final class CurlRelayFlushes {
    var due: [CurlTransfer] = []
    private var flushing: [CurlTransfer] = []

    /// Flushes every body noted in this pass (and those a resumed transfer adds as curl hands it its held bytes);
    /// returns how many.
    @discardableResult
    func flush() -> Int {
        var flushed = 0
        while !due.isEmpty {
            swap(&flushing, &due)
            flushed += flushing.count
            for transfer in flushing { transfer.resume() }
            flushing.removeAll(keepingCapacity: true)
        }
        return flushed
    }
}

@available(*, unavailable)
extension CurlRelayFlushes: Sendable {}

private func curlWriteCallback(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int,
                               _ context: UnsafeMutableRawPointer?) -> Int {
    guard let data, let context else { return 0 }
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(context).takeUnretainedValue()
    return transfer.receivedBody(UnsafeRawBufferPointer(start: data, count: size * count)) ? size * count : fleet_writefunc_pause()
}

/// A new upstream connection's receive buffer is fixed at `upstreamReceiveBuffer` instead of growing with the
/// kernel's autotuning (up to tens of MB): when a client stops reading and its transfer pauses, the upstream's
/// sends block after that much, so llama-server slows down instead of the kernel buffering the answer for it.
private func curlSocketOptions(_ context: UnsafeMutableRawPointer?, _ socket: curl_socket_t, _ purpose: curlsocktype) -> Int32 {
    var size = Int32(upstreamReceiveBuffer)
    _ = setsockopt(socket, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    return 0  // CURL_SOCKOPT_OK
}

/// 256 KiB: at loopback or LAN round trips, far more than a token stream or a whole answer needs in flight.
private let upstreamReceiveBuffer = 256 * 1024

private func curlHeaderCallback(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int,
                                _ context: UnsafeMutableRawPointer?) -> Int {
    guard let data, let context else { return 0 }
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(context).takeUnretainedValue()
    transfer.receivedHeader(UnsafeRawBufferPointer(start: data, count: size * count))
    return size * count
}

