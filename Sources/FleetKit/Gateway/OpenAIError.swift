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

    public init(status: HTTPResponse.Status, message: String, type: String = "invalid_request_error", code: String,
                retryAfter: Int? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.retryAfter = retryAfter
    }

    public var response: Response {
        let body: [String: Any] = ["error": ["message": message, "type": type, "param": NSNull(), "code": code]]
        let data = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data()
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}
