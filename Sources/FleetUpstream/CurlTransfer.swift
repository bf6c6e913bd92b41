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
    /// The request's body, which curl reads in place (`CURLOPT_POSTFIELDS`) until the handle goes back.
    private let postBody: ByteBuffer?
    /// The answer's fields, made room for once (a dozen lines of llama-server's fit).
    private var responseHeaders = UpstreamHeaders(reservingCapacity: 512)
    private var headSent = false
    /// After the head, the transfer fails when no byte arrives for this long (checked by the loop).
    let idleTimeout: Duration?
    /// Before the head, the transfer fails when it has not come after this long (checked by the loop).
    let firstByteTimeout: Duration?
    /// The head goes out with the first body byte (or at the end of an empty body), not before.
    private let headWaitsForBody: Bool
    /// … or until the body ends or half the window came.
    private let headWaitsForEnd: Bool
    /// Body bytes received so far (a chunked body's data).
    private var received = 0
    /// Whether the body is chunked (the answer's `Transfer-Encoding`): curl hands it over with its framing
    /// (`CURLOPT_HTTP_TRANSFER_DECODING` off), and `decoder` finds its data.
    private var chunked = false
    private static let transferEncoding = Array("transfer-encoding".utf8)
    private var decoder = ChunkedDecoder()
    /// Why the transfer was stopped: a chunked body that was not.
    private var malformed: ChunkedDecoder.Malformed?
    private let started: ContinuousClock.Instant
    /// When the last byte arrived (to the curl loop's pass).
    private(set) var lastActivity: ContinuousClock.Instant
    private let pass: CurlPass
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

    init(request: UpstreamRequest, sink: TransferSink, handles: CurlEasyHandles, relayFlushes: CurlRelayFlushes,
         pass: CurlPass) throws(UpstreamError) {
        guard let easy = handles.take() else {
            throw UpstreamError(kind: .invalidRequest, url: request.url, detail: "curl_easy_init failed")
        }
        self.easy = easy
        self.handles = handles
        self.relayFlushes = relayFlushes
        self.pass = pass
        self.postBody = request.body
        self.started = pass.now
        self.lastActivity = pass.now
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

        // In place: a `String` passed as a C string argument may be copied into an array first.
        var ok = request.url.withCString { fleet_easy_setopt_string(easy, CURLOPT_URL, $0) } == CURLE_OK
        ok = ok && fleet_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1) == CURLE_OK
        // Instances are on loopback or a LAN; an http_proxy in the environment must not capture them.
        ok = ok && fleet_easy_setopt_string(easy, CURLOPT_NOPROXY, UnsafePointer(OpaquePointer(Self.anyHost.utf8Start))) == CURLE_OK
        ok = ok && fleet_easy_setopt_long(easy, CURLOPT_BUFFERSIZE, min(max(request.receiveBuffer, 1024), 512 * 1024)) == CURLE_OK
        ok = ok && fleet_easy_setopt_long(easy, CURLOPT_TCP_NODELAY, 1) == CURLE_OK
        // A chunked body comes with its framing, one callback per read instead of per chunk (`ChunkedDecoder`).
        ok = ok && fleet_easy_setopt_long(easy, CURLOPT_HTTP_TRANSFER_DECODING, 0) == CURLE_OK
        ok = ok && fleet_easy_setopt_sockopt(easy, curlSocketOptions) == CURLE_OK
        ok = ok && fleet_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, request.connectTimeout.milliseconds) == CURLE_OK
        if let total = request.totalTimeout {
            ok = ok && fleet_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, max(1, total.milliseconds)) == CURLE_OK
        }
        ok = ok && fleet_easy_setopt_callback(easy, CURLOPT_WRITEFUNCTION, curlWriteCallback) == CURLE_OK
        ok = ok && fleet_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, context) == CURLE_OK
        ok = ok && fleet_easy_setopt_callback(easy, CURLOPT_HEADERFUNCTION, curlHeaderCallback) == CURLE_OK
        ok = ok && fleet_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, context) == CURLE_OK

        for header in request.headers {
            headerList = Self.append(header, to: headerList)
        }
        if let body = request.body {
            ok = ok && fleet_easy_setopt_long(easy, CURLOPT_POSTFIELDSIZE, body.readableBytes) == CURLE_OK
            // Sent from where it lies, not copied (curl's COPYPOSTFIELDS copied every prompt once more): the
            // transfer holds the buffer (`postBody`) until the handle is given back, and a ByteBuffer's bytes
            // never move while a copy of it lives (a write through another copy copies them first).
            ok = ok && body.withUnsafeReadableBytes { bytes in
                let start = UnsafeMutableRawPointer(mutating: bytes.baseAddress ?? UnsafeRawPointer(emptyBody.utf8Start))
                return fleet_easy_setopt_pointer(easy, CURLOPT_POSTFIELDS, start) == CURLE_OK
            }
            // No "Expect: 100-continue" round trip before the body.
            headerList = Self.append((name: "Expect", value: ""), to: headerList)
        }
        switch request.method.uppercased() {
        case "GET" where request.body == nil: break
        case "POST" where request.body != nil: break
        case let method:
            ok = ok && fleet_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, method) == CURLE_OK
        }
        if let headerList {
            ok = ok && fleet_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, headerList) == CURLE_OK
        }
        guard ok else {
            cleanup()
            throw UpstreamError(kind: .invalidRequest, url: request.url, detail: "curl refused an option")
        }
    }

    /// `NOPROXY`'s "every host", as a C string that lives as long as the program (a short Swift string passed
    /// as one is copied into an array first).
    private static let anyHost: StaticString = "*"

    /// Adds `name: value` (`name:` for an empty value, which tells curl to send none) to `list`, written in a
    /// buffer on the stack: curl copies it, so the line needs no string of its own.
    private static func append(_ header: (name: String, value: String), to list: UnsafeMutablePointer<curl_slist>?)
        -> UnsafeMutablePointer<curl_slist>? {
        var name = header.name
        var value = header.value
        return name.withUTF8 { name in
            value.withUTF8 { value in
                withUnsafeTemporaryAllocation(of: UInt8.self, capacity: name.count + value.count + 3) { line in
                    var end = line.initialize(fromContentsOf: name)
                    line[end] = UInt8(ascii: ":")
                    end += 1
                    if !value.isEmpty {
                        line[end] = UInt8(ascii: " ")
                        end = UnsafeMutableBufferPointer(rebasing: line[(end + 1)...]).initialize(fromContentsOf: value) + end + 1
                    }
                    line[end] = 0
                    return line.withMemoryRebound(to: CChar.self) { curl_slist_append(list, $0.baseAddress) }
                }
            }
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
            chunked = false
        } else if line.isEmpty {
            var status = 0
            _ = fleet_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
            if status >= 200 && !headWaitsForBody { sendHead(status: status) }
        } else if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
            var valueStart = colon + 1
            while valueStart < line.count, line[valueStart] == UInt8(ascii: " ") || line[valueStart] == UInt8(ascii: "\t") {
                valueStart += 1
            }
            let name = UnsafeRawBufferPointer(rebasing: line[..<colon])
            let value = UnsafeRawBufferPointer(rebasing: line[valueStart...])
            if UpstreamHeaders.namesMatch(name, Self.transferEncoding) {
                chunked = Self.endsChunked(value)
            }
            responseHeaders.append(name: name, value: value)
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

    /// Whether this is a transfer to `origin` (`http://host:port/`) that received bytes (or resumed, its client
    /// reading again) at or after `since`.
    func received(from origin: String, since: ContinuousClock.Instant) -> Bool {
        (headSent || received > 0) && lastActivity >= since && url.hasPrefix(origin)
    }

    func failDeadline() {
        let detail = headSent || received > 0
            ? "no data for \(idleTimeout?.formatted ?? "-") (gateway.idleTimeout)"
            : "no answer within \(firstByteTimeout?.formatted ?? "-") (gateway.firstByteTimeout)"
        finish(throwing: UpstreamError(kind: .timeout, url: url, detail: detail))
    }

    /// What the write callback tells curl.
    fileprivate enum Taken { case all, pause, fail }

    /// Offers received bytes to the body (a chunked body's data, without its framing); `pause` (nothing taken)
    /// pauses the transfer until `resume()`, and curl offers the same bytes again then.
    fileprivate func receivedBody(_ bytes: UnsafeRawBufferPointer) -> Taken {
        lastActivity = pass.now
        guard chunked else { return offer(bytes, parts: nil, count: bytes.count, decoded: nil) }
        var decoded = decoder
        // The pass's list, borrowed for this callback and given back emptied.
        var data = pass.chunkData
        pass.chunkData = []
        defer {
            data.removeAll(keepingCapacity: true)
            pass.chunkData = data
        }
        do {
            try decoded.decode(bytes, into: &data)
        } catch {
            malformed = error
            return .fail
        }
        var count = 0
        for part in data { count += part.count }
        // Only framing (a chunk's size line, the last chunk): nothing for the body.
        guard count > 0 else {
            decoder = decoded
            return .all
        }
        return offer(bytes, parts: data, count: count, decoded: decoded)
    }

    /// Offers `count` bytes (all of `bytes`, or its `parts`) to the body; keeps `decoded`, the decoder's state
    /// after them, only when the body took them.
    private func offer(_ bytes: UnsafeRawBufferPointer, parts: [Range<Int>]?, count: Int, decoded: ChunkedDecoder?) -> Taken {
        // The chunk is in the body before the head goes out, so whoever gets the head finds it there.
        let offered = handoff.offered(bytes, parts: parts, count: count)
        if offered == .takenForRelay { relayFlushes.due.append(self) }
        guard offered != .refused else {
            if !paused {
                paused = true
                counters.paused(1)
            }
            // Whoever waits for the head must have it to take from the full window.
            if !headSent { sendHead() }
            return .pause
        }
        if let decoded { decoder = decoded }
        received += count
        if !headSent, !headWaitsForEnd || received >= handoff.window / 2 { sendHead() }
        return .all
    }

    /// Whether a `Transfer-Encoding` value's last coding is chunked (`chunked`, or `gzip, chunked`).
    static func endsChunked(_ value: UnsafeRawBufferPointer) -> Bool {
        var end = value.count
        while end > 0, value[end - 1] == UInt8(ascii: " ") || value[end - 1] == UInt8(ascii: "\t") { end -= 1 }
        let word = "chunked".utf8
        guard end >= word.count else { return false }
        let start = end - word.count
        guard UpstreamHeaders.namesMatch(value[start..<end], word) else { return false }
        var before = start
        while before > 0, value[before - 1] == UInt8(ascii: " ") || value[before - 1] == UInt8(ascii: "\t") { before -= 1 }
        return before == 0 || value[before - 1] == UInt8(ascii: ",")
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
        lastActivity = pass.now
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
        if let malformed {
            finish(throwing: UpstreamError(kind: .transferBroken, url: url, detail: malformed.description))
            return
        }
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
    switch transfer.receivedBody(UnsafeRawBufferPointer(start: data, count: size * count)) {
    case .all: return size * count
    case .pause: return fleet_writefunc_pause()
    case .fail: return 0  // curl stops the transfer (CURLE_WRITE_ERROR); `complete` says why
    }
}

/// A new upstream connection's receive buffer is fixed at `upstreamReceiveBuffer` instead of growing with the
/// kernel's autotuning (up to tens of MB): when a client stops reading and its transfer pauses, the upstream's
/// sends block after that much, so llama-server slows down instead of the kernel buffering the answer for it.
private func curlSocketOptions(_ context: UnsafeMutableRawPointer?, _ socket: curl_socket_t, _ purpose: curlsocktype) -> Int32 {
    var size = Int32(upstreamReceiveBuffer)
    _ = setsockopt(socket, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    return 0  // CURL_SOCKOPT_OK
}

/// What an empty body points curl at (a body's bytes may have no address): a constant's, which lives as long as
/// the program.
private let emptyBody: StaticString = ""

/// 256 KiB: at loopback or LAN round trips, far more than a token stream or a whole answer needs in flight.
private let upstreamReceiveBuffer = 256 * 1024

private func curlHeaderCallback(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int,
                                _ context: UnsafeMutableRawPointer?) -> Int {
    guard let data, let context else { return 0 }
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(context).takeUnretainedValue()
    transfer.receivedHeader(UnsafeRawBufferPointer(start: data, count: size * count))
    return size * count
}

