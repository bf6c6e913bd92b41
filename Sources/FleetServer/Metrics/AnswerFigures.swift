import NIOCore
import FleetCore

/// What llama-server reports at the end of an answer: the tokens it generated (`"usage": {"completion_tokens": N}`
/// in non-streamed answers and usage chunks, `"timings": {"predicted_n": N}` in the last event of every stream)
/// and its prompt cache (`"timings": {"cache_n": C, "prompt_n": P}`: C tokens reused, P evaluated; or
/// `"usage": {"prompt_tokens": T, "prompt_tokens_details": {"cached_tokens": C}}`; Anthropic's `/v1/messages`:
/// `"usage": {"input_tokens": U, "cache_read_input_tokens": C, "output_tokens": N}`, where U is what was not
/// cached; `/v1/responses`: `"usage": {"input_tokens": T, "input_tokens_details": {"cached_tokens": C},
/// "output_tokens": N}`). Only the tail of the response is looked at — the gateway keeps its last two chunks, and
/// of them the last `scanned` bytes — and the start of its first chunk (an Anthropic stream reports its input in
/// `message_start`), so the cost per chunk is nothing and per answer bounded.
struct AnswerFigures: Equatable {
    var completionTokens: Int?
    var promptCache: PromptCacheCounts?
    /// What evaluating one prompt token took (`timings.prompt_ms / prompt_n`), when at least 16 were evaluated.
    var promptMsPerToken: Double?

    private static func key(_ name: String) -> [UInt8] { Array("\"\(name)\":".utf8) }
    private static let completion = [key("completion_tokens"), key("predicted_n"), key("output_tokens")]
    private static let cacheRead = key("cache_read_input_tokens"), inputTokens = key("input_tokens")
    private static let cacheN = key("cache_n"), promptN = key("prompt_n"), promptMs = key("prompt_ms")
    private static let cachedTokens = key("cached_tokens"), promptTokens = key("prompt_tokens")

    /// How much of the tail, and of the head, is looked at. llama-server writes its figures last (`usage` and
    /// `timings` close a plain answer; a stream's are in its last event and the usage chunk before it, a few
    /// hundred bytes), but a chunk can hold many events: a stream's writes carry what came meanwhile.
    static let scanned = 4096

    /// The figures the tail reports (each nil when it has none).
    static func scan(_ tail: [ByteBuffer], head: ByteBuffer? = nil) -> AnswerFigures {
        var bytes: [UInt8] = []
        var skip = tail.reduce(0) { $0 + $1.readableBytes } - scanned
        for buffer in tail {
            let view = buffer.readableBytesView
            if skip >= view.count {
                skip -= view.count
                continue
            }
            bytes.append(contentsOf: view.dropFirst(max(0, skip)))
            skip = 0
        }
        var figures = AnswerFigures()
        var best: (position: Int, value: Int)?
        for key in completion {
            guard let (position, value) = lastValue(of: key, in: bytes) else { continue }
            if best == nil || position > best!.position { best = (position, value) }
        }
        figures.completionTokens = best?.value
        if let cached = lastValue(of: cacheN, in: bytes)?.1, let evaluated = lastValue(of: promptN, in: bytes)?.1 {
            figures.promptCache = PromptCacheCounts(promptTokens: cached + evaluated, cachedTokens: cached)
            if evaluated >= 16, let milliseconds = lastDecimal(of: promptMs, in: bytes) {
                figures.promptMsPerToken = milliseconds / Double(evaluated)
            }
        } else if let usage = anthropicUsage(tail: bytes, head: head),
                  let cached = lastValue(of: cacheRead, in: usage)?.1, let uncached = lastValue(of: inputTokens, in: usage)?.1 {
            figures.promptCache = PromptCacheCounts(promptTokens: uncached + cached, cachedTokens: cached)
        } else if let cached = lastValue(of: cachedTokens, in: bytes)?.1,
                  let prompt = lastValue(of: promptTokens, in: bytes)?.1 ?? lastValue(of: inputTokens, in: bytes)?.1 {
            figures.promptCache = PromptCacheCounts(promptTokens: prompt, cachedTokens: min(cached, prompt))
        }
        return figures
    }

    /// Where Anthropic's input usage is: at the end of a plain answer (the tail), in `message_start` (the head)
    /// of a stream. The head is looked at only when the tail has none.
    private static func anthropicUsage(tail: [UInt8], head: ByteBuffer?) -> [UInt8]? {
        if lastValue(of: cacheRead, in: tail) != nil { return tail }
        guard let head else { return nil }
        let bytes = Array(head.readableBytesView.prefix(scanned))
        return lastValue(of: cacheRead, in: bytes) != nil ? bytes : nil
    }

    /// The decimal number (`41.09`) after the last occurrence of `key`.
    private static func lastDecimal(of key: [UInt8], in bytes: [UInt8]) -> Double? {
        guard let (start, _) = lastValue(of: key, in: bytes) else { return nil }
        var index = start + key.count
        while index < bytes.count && bytes[index] == UInt8(ascii: " ") { index += 1 }
        var end = index
        while end < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[end]) || bytes[end] == UInt8(ascii: ".")
                || bytes[end] == UInt8(ascii: "e") || bytes[end] == UInt8(ascii: "-") || bytes[end] == UInt8(ascii: "+") {
            end += 1
        }
        return Double(String(decoding: bytes[index..<end], as: UTF8.self))
    }

    /// The number after the last occurrence of `key` (spaces allowed before it).
    private static func lastValue(of key: [UInt8], in bytes: [UInt8]) -> (Int, Int)? {
        guard bytes.count >= key.count else { return nil }
        var start = bytes.count - key.count
        while start >= 0 {
            if bytes[start] == key[0] && bytes[start..<start + key.count].elementsEqual(key) {
                var index = start + key.count
                while index < bytes.count && bytes[index] == UInt8(ascii: " ") { index += 1 }
                var value = 0
                var digits = 0
                while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]), digits < 12 {
                    value = value * 10 + Int(bytes[index] - UInt8(ascii: "0"))
                    index += 1
                    digits += 1
                }
                if digits > 0 { return (start, value) }
            }
            start -= 1
        }
        return nil
    }
}
