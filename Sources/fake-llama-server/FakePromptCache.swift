import Foundation
import Synchronization

/// What llama-server's prompt cache did for one request: `cacheN` tokens reused from a slot (or the host cache),
/// `promptN` tokens processed anew; `cacheN + promptN` is the prompt's length in tokens.
struct PromptFigures: Sendable, Equatable {
    var cacheN = 0
    var promptN = 0
    var total: Int { cacheN + promptN }
}

/// The prompts the fake has processed, as llama-server's slots and host cache hold them, so that its answers
/// carry the cache figures (`timings.cache_n`, `usage.prompt_tokens_details.cached_tokens`) a real server
/// would report, and cache-aware routing can be tested and measured without a model.
///
/// "Tokens" are UTF-8 bytes / 4: a prompt of `n` bytes is `ceil(n / 4)` tokens, and a shared prefix of `p` bytes
/// saves `floor(p / 4)` of them (a partly shared token is processed again). Close enough to a real tokenizer's
/// ~4 characters per token for routing to behave as it would on a model.
final class FakePromptCache: Sendable {
    private struct State {
        /// Oldest first: the least recently used entry goes when the record is full.
        var prompts: [[UInt8]] = []
        var last = PromptFigures()
    }

    /// How many prompts are kept: what `slots` slots plus a small host cache hold.
    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// The text a request's tokens come from: for chat, each message as role + "\n" + content + "\n" (array
    /// content as its raw JSON); for `/v1/completions`, the `prompt` string.
    static func promptText(of json: [String: Any], chat: Bool) -> String {
        guard chat else { return json["prompt"] as? String ?? "" }
        let messages = json["messages"] as? [[String: Any]] ?? []
        return messages.map { message in
            let role = message["role"] as? String ?? ""
            let content: String
            switch message["content"] {
            case let text as String: content = text
            case let value? where JSONSerialization.isValidJSONObject(value):
                content = (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]))
                    .map { String(decoding: $0, as: UTF8.self) } ?? ""
            default: content = ""
            }
            return role + "\n" + content + "\n"
        }.joined()
    }

    /// The chat turn an answer adds, as the next request of the conversation will resend it.
    static func assistantTurn(_ answer: String) -> String { "assistant\n" + answer + "\n" }

    /// Tokens in `bytes` bytes of prompt.
    static func tokens(_ bytes: Int) -> Int { (bytes + 3) / 4 }

    /// How much of `prompt` the record already holds (the longest shared prefix with any recorded prompt). At
    /// least one token is always processed, as llama-server re-evaluates the last one to get its logits.
    func figures(for prompt: String) -> PromptFigures {
        let bytes = Array(prompt.utf8)
        let total = Self.tokens(bytes.count)
        let shared = state.withLock { state in
            state.prompts.map { Self.commonPrefix($0, bytes) }.max() ?? 0
        }
        let cached = min(shared / 4, max(0, total - 1))
        return PromptFigures(cacheN: cached, promptN: total - cached)
    }

    /// Records a processed prompt (with the answer appended, as the slot holds it) and its figures, which
    /// `GET /fake/cache` shows.
    func record(_ text: String, figures: PromptFigures) {
        let bytes = Array(text.utf8)
        state.withLock { state in
            state.prompts.removeAll { $0 == bytes }
            state.prompts.append(bytes)
            if state.prompts.count > capacity { state.prompts.removeFirst(state.prompts.count - capacity) }
            state.last = figures
        }
    }

    /// `{"prompts": N, "lastCacheN": x, "lastPromptN": y}`.
    var json: String {
        state.withLock { state in
            #"{"prompts":\#(state.prompts.count),"lastCacheN":\#(state.last.cacheN),"lastPromptN":\#(state.last.promptN)}"#
        }
    }

    private static func commonPrefix(_ a: [UInt8], _ b: [UInt8]) -> Int {
        var index = 0
        let end = min(a.count, b.count)
        while index < end && a[index] == b[index] { index += 1 }
        return index
    }
}
