internal import CCurl
import Foundation
import NIOCore
import FleetCore

/// Where a transfer delivers: the head once (status and headers), then body chunks into a stream.
struct TransferSink: Sendable {
    let head: @Sendable (Result<UpstreamStream, any Error>) -> Void
    let body: AsyncThrowingStream<ByteBuffer, any Error>
    let continuation: AsyncThrowingStream<ByteBuffer, any Error>.Continuation
    let cancel: @Sendable () -> Void
}

/// One easy handle and where its response goes. Confined to the curl thread: created, driven by curl's
/// callbacks and destroyed there.
final class CurlTransfer {
    let easy: UnsafeMutableRawPointer
    private let url: String
    private let deliverHead: @Sendable (Result<UpstreamStream, any Error>) -> Void
    private let continuation: AsyncThrowingStream<ByteBuffer, any Error>.Continuation
    private let cancel: @Sendable () -> Void
    /// Held only until the head is delivered: afterwards the consumer alone keeps the body stream alive, so
    /// dropping it terminates the stream and cancels the transfer.
    private var body: AsyncThrowingStream<ByteBuffer, any Error>?
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private var responseHeaders: [(name: String, value: String)] = []
    private var headSent = false
    /// After the head, the transfer fails when no byte arrives for this long (checked by the loop).
    let idleTimeout: Duration?
    /// The head goes out with the first body byte (or at the end of an empty body), not before.
    private let headWaitsForBody: Bool
    /// When the last byte arrived.
    private(set) var lastActivity = ContinuousClock.now

    init(request: UpstreamRequest, sink: TransferSink) throws(UpstreamError) {
        guard let easy = curl_easy_init() else {
            throw UpstreamError(kind: .invalidRequest, url: request.url, detail: "curl_easy_init failed")
        }
        self.easy = easy
        self.url = request.url
        self.idleTimeout = request.idleTimeout
        self.headWaitsForBody = request.headWaitsForBody
        self.deliverHead = sink.head
        self.continuation = sink.continuation
        self.cancel = sink.cancel
        self.body = sink.body
        let context = Unmanaged.passUnretained(self).toOpaque()

        var ok = fleet_easy_setopt_string(easy, CURLOPT_URL, request.url) == CURLE_OK
        ok = ok && fleet_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1) == CURLE_OK
        // Instances are on loopback or a LAN; an http_proxy in the environment must not capture them.
        ok = ok && fleet_easy_setopt_string(easy, CURLOPT_NOPROXY, "*") == CURLE_OK
        ok = ok && fleet_easy_setopt_long(easy, CURLOPT_TCP_NODELAY, 1) == CURLE_OK
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
            ok = ok && fleet_easy_setopt_long(easy, CURLOPT_POSTFIELDSIZE, body.count) == CURLE_OK
            ok = ok && body.withUnsafeBytes { bytes in
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

    deinit { cleanup() }

    private var cleanedUp = false
    private func cleanup() {
        guard !cleanedUp else { return }
        cleanedUp = true
        curl_easy_cleanup(easy)
        curl_slist_free_all(headerList)
        headerList = nil
    }

    fileprivate func receivedHeader(_ line: String) {
        let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("HTTP/") {
            responseHeaders.removeAll()  // a new response (after a 100 Continue or a redirect)
        } else if trimmed.isEmpty {
            var status = 0
            _ = fleet_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
            if status >= 200 && !headWaitsForBody { sendHead(status: status) }
        } else if let colon = trimmed.firstIndex(of: ":") {
            responseHeaders.append((name: String(trimmed[..<colon]),
                                    value: trimmed[trimmed.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
    }

    /// Whether the transfer has been silent longer than its idle timeout since its head arrived.
    func isIdle(at now: ContinuousClock.Instant) -> Bool {
        guard headSent, let idleTimeout else { return false }
        return now - lastActivity > idleTimeout
    }

    func failIdle() {
        finish(throwing: UpstreamError(kind: .timeout, url: url,
                                       detail: "no data for \(idleTimeout?.formatted ?? "-") (gateway.idleTimeout)"))
    }

    fileprivate func receivedBody(_ bytes: UnsafeRawBufferPointer) {
        lastActivity = .now
        // The chunk is in the stream before the head goes out, so whoever gets the head finds it there.
        continuation.yield(ByteBuffer(bytes: bytes))
        if !headSent {
            var status = 0
            _ = fleet_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
            sendHead(status: status)
        }
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
        if !headSent {
            var status = 0
            _ = fleet_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
            sendHead(status: status)
        }
        continuation.finish()
    }

    /// Fails the transfer: the caller still waiting for the head gets the error, else the body stream does.
    func finish(throwing error: any Error) {
        if !headSent {
            headSent = true
            body = nil
            deliverHead(.failure(error))
        }
        continuation.finish(throwing: error)
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

private func curlWriteCallback(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int,
                               _ context: UnsafeMutableRawPointer?) -> Int {
    guard let data, let context else { return 0 }
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(context).takeUnretainedValue()
    transfer.receivedBody(UnsafeRawBufferPointer(start: data, count: size * count))
    return size * count
}

private func curlHeaderCallback(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int,
                                _ context: UnsafeMutableRawPointer?) -> Int {
    guard let data, let context else { return 0 }
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(context).takeUnretainedValue()
    let bytes = UnsafeRawBufferPointer(start: data, count: size * count)
    transfer.receivedHeader(String(decoding: bytes, as: UTF8.self))
    return size * count
}

