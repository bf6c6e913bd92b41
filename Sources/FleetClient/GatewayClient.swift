import Foundation
import NIOCore
import FleetUpstream
import FleetCore

/// The CLI's side of the OpenAI gateway (`fleet complete`, `fleet chat`): sends chat completions and streams
/// the answer's text as it arrives.
public struct GatewayClient: Sendable {
    public let baseURL: String
    public let apiKey: String?

    public init(baseURL: String, apiKey: String? = nil) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.apiKey = apiKey
    }

    /// A chat message, in OpenAI's shape.
    public struct Message: Sendable, Codable, Equatable {
        public var role: String
        public var content: String
        public init(role: String, content: String) {
            self.role = role
            self.content = content
        }
    }

    /// The gateway answered with an error.
    public struct Failure: Error, CustomStringConvertible {
        public var status: Int
        public var message: String
        public var description: String { "the gateway answered \(status): \(message)" }
    }

    /// Streams a chat completion: `onText` gets each piece of the answer as it arrives. Returns the whole answer.
    /// - Throws: `Failure` for an error answer, `ControlClient.Unreachable` when no controller runs there.
    public func streamChat(model: String, messages: [Message], maxTokens: Int?, temperature: Double?,
                           onText: @Sendable (String) -> Void) async throws -> String {
        let body = try requestBody(model: model, messages: messages, maxTokens: maxTokens, temperature: temperature, stream: true)
        return try await withClient { client in
            let stream = try await client.execute(request(body))
            guard stream.status == 200 else {
                var text = ""
                for try await chunk in stream.body { text += String(buffer: chunk) }
                throw Failure(status: stream.status, message: Self.errorMessage(text))
            }
            var framer = SSEFramer()
            var answer = ""
            for try await chunk in stream.body {
                for event in framer.feed(chunk) {
                    for piece in Self.texts(inEvent: String(buffer: event)) {
                        answer += piece
                        onText(piece)
                    }
                }
            }
            return answer
        }
    }

    /// A chat completion, not streamed: the gateway's JSON as it came.
    public func chatJSON(model: String, messages: [Message], maxTokens: Int?, temperature: Double?) async throws -> String {
        let body = try requestBody(model: model, messages: messages, maxTokens: maxTokens, temperature: temperature, stream: false)
        return try await withClient { client in
            let response = try await client.fetch(request(body))
            guard response.status == 200 else { throw Failure(status: response.status, message: Self.errorMessage(response.bodyText)) }
            return response.bodyText
        }
    }

    private func request(_ body: [UInt8]) -> UpstreamRequest {
        UpstreamRequest(method: "POST", url: baseURL + "/v1/chat/completions",
                        headers: [("Content-Type", "application/json")] + ControlClient.authorization(apiKey),
                        body: body, connectTimeout: .seconds(2))
    }

    private func withClient<T: Sendable>(_ body: (UpstreamClient) async throws -> T) async throws -> T {
        do {
            return try await UpstreamClient.with(body)
        } catch let error as UpstreamError where error.kind == .connectFailed {
            throw ControlClient.Unreachable(url: baseURL)
        }
    }

    private func requestBody(model: String, messages: [Message], maxTokens: Int?, temperature: Double?, stream: Bool) throws -> [UInt8] {
        var json: [String: Any] = ["model": model, "stream": stream,
                                   "messages": messages.map { ["role": $0.role, "content": $0.content] }]
        if let maxTokens { json["max_tokens"] = maxTokens }
        if let temperature { json["temperature"] = temperature }
        return Array(try JSONSerialization.data(withJSONObject: json))
    }

    /// The text pieces in one SSE event (`choices[].delta.content` or `choices[].text`).
    static func texts(inEvent event: String) -> [String] {
        event.split(separator: "\n").compactMap { line -> [String]? in
            guard line.hasPrefix("data:") else { return nil }
            let payload = line.dropFirst(5).trimmingCharacters(in: .whitespaces)
            guard payload != "[DONE]", let data = payload.data(using: .utf8),
                  let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let choices = json["choices"] as? [[String: Any]] else { return nil }
            return choices.compactMap { choice in
                (choice["delta"] as? [String: Any])?["content"] as? String ?? choice["text"] as? String
            }
        }.flatMap { $0 }
    }

    static func errorMessage(_ body: String) -> String {
        guard let data = body.data(using: .utf8),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let error = json["error"] as? [String: Any], let message = error["message"] as? String else { return body }
        return message
    }
}
