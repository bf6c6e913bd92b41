public import NIOCore

/// One HTTP request to an upstream (an instance, or a controller when the CLI talks to one).
public struct UpstreamRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(name: String, value: String)]
    public var body: ByteBuffer?
    /// Longest wait for the TCP connection.
    public var connectTimeout: Duration
    /// Longest wait for the whole transfer; `nil` means no limit (streams run as long as tokens flow).
    public var totalTimeout: Duration?
    /// Once the head has arrived, the transfer fails when no byte arrives for this long; `nil` means no limit.
    /// (Before the head, `connectTimeout`, `firstByteTimeout` and `totalTimeout` apply.)
    public var idleTimeout: Duration?
    /// The transfer fails when its head has not arrived after this long (checked by the curl thread, with a
    /// few hundred milliseconds' precision); `nil` means only `connectTimeout` and `totalTimeout` apply.
    public var firstByteTimeout: Duration?
    /// Bytes of the answer the controller holds for a consumer that does not take them; beyond, the transfer
    /// pauses (the upstream's sends block) until the consumer catches up.
    public var window = UpstreamBody.defaultWindow
    /// Hold the head back until the first byte of the body arrives (or the body turns out empty), so that a
    /// transfer that breaks after its head but before any byte fails like one that never answered: the
    /// gateway can still try another instance, since nothing has reached its client.
    public var headWaitsForBody = false
    /// Hold the head back further, until the body ends or half the window has arrived: an answer that is not
    /// streamed then reaches its consumer in one hand-over (one thread wake-up instead of two), and one that
    /// breaks before its end can still go to another instance.
    public var headWaitsForEnd = false
    /// curl's receive buffer (`CURLOPT_BUFFERSIZE`): the most one read takes from the socket. Every transfer in
    /// flight holds one, so a stream, which lives long and whose events are small, takes `streamReceiveBuffer`.
    public var receiveBuffer = UpstreamRequest.defaultReceiveBuffer
    /// A stream whose events may reach their consumer up to `CurlEventLoop.lingerMilliseconds` (2 ms) later under
    /// load, gathered with the events that come meanwhile: while every transfer in flight is one, the curl loop
    /// lets bytes accumulate before it reads again. False for an answer someone waits for whole (a plain
    /// completion, a probe): while one is in flight, the loop lingers only briefly.
    public var batched = false

    /// 16 KiB: an answer of 1 MB (an embeddings batch) is read in 64 reads.
    public static let defaultReceiveBuffer = 16 * 1024
    /// 4 KiB: a dozen of llama-server's events per read; 1,000 streams hold 4 MB of it.
    public static let streamReceiveBuffer = 4 * 1024

    public init(method: String = "GET", url: String, headers: [(name: String, value: String)] = [],
                body: ByteBuffer? = nil, connectTimeout: Duration = .seconds(5), totalTimeout: Duration? = nil,
                idleTimeout: Duration? = nil, firstByteTimeout: Duration? = nil, headWaitsForBody: Bool = false,
                headWaitsForEnd: Bool = false, receiveBuffer: Int = UpstreamRequest.defaultReceiveBuffer,
                batched: Bool = false) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.connectTimeout = connectTimeout
        self.totalTimeout = totalTimeout
        self.idleTimeout = idleTimeout
        self.firstByteTimeout = firstByteTimeout
        self.headWaitsForBody = headWaitsForBody
        self.headWaitsForEnd = headWaitsForEnd
        self.receiveBuffer = receiveBuffer
        self.batched = batched
    }

    public init(method: String = "GET", url: String, headers: [(name: String, value: String)] = [],
                body: [UInt8], connectTimeout: Duration = .seconds(5), totalTimeout: Duration? = nil,
                idleTimeout: Duration? = nil) {
        self.init(method: method, url: url, headers: headers, body: ByteBuffer(bytes: body),
                  connectTimeout: connectTimeout, totalTimeout: totalTimeout, idleTimeout: idleTimeout)
    }
}

/// A response whose head has arrived and whose body streams: chunks as curl receives them. Dropping the body
/// (or cancelling its consumer) aborts the transfer and closes the connection.
public struct UpstreamStream: Sendable {
    public var status: Int
    public var headers: UpstreamHeaders
    public var body: UpstreamBody
    /// Aborts the transfer now: the handle is removed and the connection closed, so the upstream sees its
    /// client go. Harmless after the end.
    public var cancel: @Sendable () -> Void = {}

    public func header(_ name: String) -> String? { headers.first(name) }
}

/// A whole response, for callers that want it buffered.
public struct UpstreamResponse: Sendable {
    public var status: Int
    public var headers: UpstreamHeaders
    public var body: ByteBuffer

    public var bodyText: String { String(buffer: body) }

    public func header(_ name: String) -> String? { headers.first(name) }
}

/// Why an upstream transfer failed, in kinds a caller can act on.
public struct UpstreamError: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// Nothing listens on the port, or the host is unreachable.
        case connectFailed
        /// The connect, idle or total timeout passed.
        case timeout
        /// The connection broke during the transfer.
        case transferBroken
        /// The request could not be set up (bad URL, curl refused an option).
        case invalidRequest
    }

    public var kind: Kind
    public var url: String
    public var detail: String

    public init(kind: Kind, url: String, detail: String) {
        self.kind = kind
        self.url = url
        self.detail = detail
    }

    public var description: String {
        switch kind {
        case .connectFailed: "cannot connect to \(url): \(detail)"
        case .timeout: "timed out talking to \(url): \(detail)"
        case .transferBroken: "transfer from \(url) broke: \(detail)"
        case .invalidRequest: "invalid request to \(url): \(detail)"
        }
    }
}

