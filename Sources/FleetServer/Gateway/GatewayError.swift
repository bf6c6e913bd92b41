import FleetCore
public import Hummingbird
import NIOCore

/// An error of the gateway, answered in the shape its route's clients read, so they show its message: OpenAI's
/// `{"error":{"message":…,"type":…,"param":null,"code":…}}`, or on Anthropic's routes (`/v1/messages…`)
/// `{"type":"error","error":{"type":…,"message":…}}`.
public struct GatewayError: Error, Sendable {
    public var status: HTTPResponse.Status
    public var message: String
    public var type: String
    public var code: String
    /// Seconds a client should wait before retrying (429 and 503 only).
    public var retryAfter: Int?
    /// Close the connection after the answer: the request's body was not read to its end.
    public var closeConnection = false

    public init(status: HTTPResponse.Status, message: String, type: String = "invalid_request_error", code: String,
                retryAfter: Int? = nil, closeConnection: Bool = false) {
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.retryAfter = retryAfter
        self.closeConnection = closeConnection
    }

    /// The error as a server-sent event, for a stream that is cut after it began: OpenAI clients raise it.
    public var event: ByteBuffer { event(for: .openAI) }

    /// The error as the last event of a cut stream, in `family`'s framing (Anthropic's names its event `error`).
    func event(for family: GatewayRoute.Family) -> ByteBuffer {
        var buffer = ByteBuffer(string: family == .anthropic ? "event: error\ndata: " : "data: ")
        buffer.writeString(body(for: family))
        buffer.writeString("\n\n")
        return buffer
    }

    /// Anthropic's error type for the status.
    var anthropicType: String {
        switch status.code {
        case 400: "invalid_request_error"
        case 401: "authentication_error"
        case 403: "permission_error"
        case 404: "not_found_error"
        case 413: "request_too_large"
        case 429: "rate_limit_error"
        case 503: "overloaded_error"
        default: "api_error"
        }
    }

    // The bodies are written by hand (keys sorted, as JSONSerialization's `.sortedKeys` wrote them): refusals are
    // what a flood or an overload makes the gateway answer most, and JSONSerialization took half the CPU of a
    // refused request.

    func body(for family: GatewayRoute.Family) -> String {
        guard family == .anthropic else { return body }
        return #"{"error":{"message":"# + message.jsonQuoted + #","type":"# + anthropicType.jsonQuoted + #"},"type":"error"}"#
    }

    /// `{"error":{…}}`: the body of every shape this error takes.
    var body: String {
        #"{"error":{"code":"# + code.jsonQuoted + #","message":"# + message.jsonQuoted + #","param":null,"type":"#
            + type.jsonQuoted + "}}"
    }

    public var response: Response { response(for: .openAI) }

    /// The answer to a request for `path`, in the shape of the clients of that path.
    public func response(forPath path: String) -> Response { response(for: GatewayRoute.family(of: path)) }

    func response(for family: GatewayRoute.Family) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        if closeConnection { headers[.connection] = "close" }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: body(for: family))))
    }
}
