import Foundation

/// One request of a bench run, as measured by the client.
public struct BenchSample: Sendable, Equatable {
    /// Agent: the session (0-based); chat and embeddings: the request's index.
    public var session: Int
    /// Agent: the turn (1-based); otherwise 1.
    public var turn: Int
    /// The HTTP status; 0 when no answer came (connection refused, broken before the head).
    public var status: Int
    /// Why the request failed (non-200, an error event, a stream cut before `[DONE]`); nil when it succeeded.
    public var error: String?
    /// Seconds to the first SSE event with content (or the first event at all); for embeddings, to the head.
    public var timeToFirstToken: Double?
    /// Seconds from sending to the end of the answer.
    public var latency: Double
    public var completionTokens: Int?
    /// Prompt tokens reused from the server's cache (`timings.cache_n`).
    public var cachedTokens: Int?
    /// Prompt tokens processed anew (`timings.prompt_n`).
    public var processedTokens: Int?
    /// Which instance served it: the gateway's `X-Fleet-Instance` header, "?" when absent.
    public var instance: String
    /// The answer's text, which the next turn of an agent session resends.
    public var answer: String = ""

    public var succeeded: Bool { error == nil }

    public init(session: Int, turn: Int, status: Int, error: String? = nil, timeToFirstToken: Double? = nil,
                latency: Double, completionTokens: Int? = nil, cachedTokens: Int? = nil, processedTokens: Int? = nil,
                instance: String = "?", answer: String = "") {
        self.session = session
        self.turn = turn
        self.status = status
        self.error = error
        self.timeToFirstToken = timeToFirstToken
        self.latency = latency
        self.completionTokens = completionTokens
        self.cachedTokens = cachedTokens
        self.processedTokens = processedTokens
        self.instance = instance
        self.answer = answer
    }
}

/// Reads an answer event by event: its text, whether it ended well, and llama-server's figures from the last
/// event that has them (`timings`: `cache_n`, `prompt_n`, `predicted_n`; else `usage`: `cached_tokens` of
/// `prompt_tokens_details`, `prompt_tokens`, `completion_tokens`).
struct BenchAnswerReader {
    private(set) var text = ""
    private(set) var sawContent = false
    private(set) var done = false
    private(set) var error: String?
    private(set) var completionTokens: Int?
    private(set) var cachedTokens: Int?
    private(set) var processedTokens: Int?

    /// Takes one SSE event (its `data:` lines) or a whole JSON answer; returns whether it carried content.
    @discardableResult
    mutating func read(event: String) -> Bool {
        var hadContent = false
        for line in event.split(separator: "\n") {
            let payload: Substring
            if line.hasPrefix("data:") {
                payload = line.dropFirst(5).drop { $0 == " " }
            } else if line.hasPrefix("{") {
                payload = line
            } else {
                continue
            }
            if payload == "[DONE]" {
                done = true
                continue
            }
            guard let json = try? JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any] else { continue }
            hadContent = read(json: json) || hadContent
        }
        return hadContent
    }

    private mutating func read(json: [String: Any]) -> Bool {
        if let failure = json["error"] {
            error = ((failure as? [String: Any])?["message"] as? String) ?? "\(failure)"
        }
        var hadContent = false
        for choice in json["choices"] as? [[String: Any]] ?? [] {
            let piece = ((choice["delta"] as? [String: Any])?["content"] as? String)
                ?? ((choice["message"] as? [String: Any])?["content"] as? String)
                ?? (choice["text"] as? String)
            if let piece, !piece.isEmpty {
                text += piece
                hadContent = true
            }
        }
        if let usage = json["usage"] as? [String: Any] {
            completionTokens = usage["completion_tokens"] as? Int ?? completionTokens
            if let cached = (usage["prompt_tokens_details"] as? [String: Any])?["cached_tokens"] as? Int {
                cachedTokens = cached
                if let prompt = usage["prompt_tokens"] as? Int { processedTokens = max(0, prompt - cached) }
            }
        }
        // timings win over usage: llama-server's own count of what its cache saved.
        if let timings = json["timings"] as? [String: Any] {
            completionTokens = timings["predicted_n"] as? Int ?? completionTokens
            cachedTokens = timings["cache_n"] as? Int ?? cachedTokens
            processedTokens = timings["prompt_n"] as? Int ?? processedTokens
        }
        sawContent = sawContent || hadContent
        return hadContent
    }
}
