import Foundation
public import Hummingbird
import NIOCore

/// An error answered in OpenAI's shape, so OpenAI clients show its message:
/// `{"error":{"message":…,"type":…,"param":null,"code":…}}`.
public struct OpenAIError: Error, Sendable {
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
    public var event: ByteBuffer {
        var buffer = ByteBuffer(string: "data: ")
        buffer.writeBytes(body)
        buffer.writeString("\n\n")
        return buffer
    }

    /// `{"error":{…}}`: the body of every shape this error takes.
    var body: Data {
        let body: [String: Any] = ["error": ["message": message, "type": type, "param": NSNull(), "code": code]]
        return (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data()
    }

    public var response: Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        if closeConnection { headers[.connection] = "close" }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}
