import Glibc
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
    /// Every key looked for, found in one pass (`KeyHits`); the indices below name them.
    private static let keys = ["completion_tokens", "predicted_n", "output_tokens", "cache_read_input_tokens", "input_tokens",
                               "cache_n", "prompt_n", "prompt_ms", "cached_tokens", "prompt_tokens"].map(key)
    private static let completion = [0, 1, 2]
    private static let cacheRead = 3, inputTokens = 4, cacheN = 5, promptN = 6, promptMs = 7, cachedTokens = 8,
                       promptTokens = 9

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
        let hits = KeyHits(keys, in: bytes)
        var figures = AnswerFigures()
        var best: (position: Int, value: Int)?
        for key in completion {
            guard let hit = hits[key] else { continue }
            if best == nil || hit.position > best!.position { best = hit }
        }
        figures.completionTokens = best?.value
        if let cached = hits[cacheN]?.value, let evaluated = hits[promptN]?.value {
            figures.promptCache = PromptCacheCounts(promptTokens: cached + evaluated, cachedTokens: cached)
            if evaluated >= 16, let at = hits[promptMs]?.position, let milliseconds = decimal(at: at + keys[promptMs].count, in: bytes) {
                figures.promptMsPerToken = milliseconds / Double(evaluated)
            }
        } else if let usage = anthropicUsage(tail: hits, head: head),
                  let cached = usage[cacheRead]?.value, let uncached = usage[inputTokens]?.value {
            figures.promptCache = PromptCacheCounts(promptTokens: uncached + cached, cachedTokens: cached)
        } else if let cached = hits[cachedTokens]?.value,
                  let prompt = hits[promptTokens]?.value ?? hits[inputTokens]?.value {
            figures.promptCache = PromptCacheCounts(promptTokens: prompt, cachedTokens: min(cached, prompt))
        }
        return figures
    }

    /// Where Anthropic's input usage is: at the end of a plain answer (the tail), in `message_start` (the head)
    /// of a stream. The head is looked at only when the tail has none.
    private static func anthropicUsage(tail: KeyHits, head: ByteBuffer?) -> KeyHits? {
        if tail[cacheRead] != nil { return tail }
        guard let head else { return nil }
        let hits = KeyHits(keys, in: Array(head.readableBytesView.prefix(scanned)))
        return hits[cacheRead] != nil ? hits : nil
    }

    /// The decimal number (`41.09`) at `start` (spaces allowed before it).
    private static func decimal(at start: Int, in bytes: [UInt8]) -> Double? {
        var index = start
        while index < bytes.count && bytes[index] == UInt8(ascii: " ") { index += 1 }
        var end = index
        while end < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[end]) || bytes[end] == UInt8(ascii: ".")
                || bytes[end] == UInt8(ascii: "e") || bytes[end] == UInt8(ascii: "-") || bytes[end] == UInt8(ascii: "+") {
            end += 1
        }
        return Double(String(decoding: bytes[index..<end], as: UTF8.self))
    }
}

/// Where each of some JSON keys (`"name":`) last occurs followed by a number, and that number: one pass from
/// colon to colon (`memchr`), a key's name compared only where a number follows it, instead of one backward
/// search per key: an answer's figures are looked for on every request.
private struct KeyHits {
    private var hits: [(position: Int, value: Int)?]

    init(_ keys: [[UInt8]], in bytes: [UInt8]) {
        var hits = [(position: Int, value: Int)?](repeating: nil, count: keys.count)
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            var index = 0
            while index < raw.count, let found = memchr(base + index, Int32(UInt8(ascii: ":")), raw.count - index) {
                let colon = base.distance(to: UnsafeRawPointer(found))
                index = colon + 1
                guard colon >= 2, raw[colon - 1] == UInt8(ascii: "\""), let value = Self.number(at: colon + 1, in: raw) else { continue }
                // The key's opening quote.
                var start = colon - 2
                while start >= 0, raw[start] != UInt8(ascii: "\"") { start -= 1 }
                guard start >= 0 else { continue }
                let length = colon + 1 - start
                for k in keys.indices where keys[k].count == length
                    && keys[k].withUnsafeBytes({ memcmp(base + start, $0.baseAddress!, length) }) == 0 {
                    hits[k] = (start, value)
                    break
                }
            }
        }
        self.hits = hits
    }

    subscript(key: Int) -> (position: Int, value: Int)? { hits[key] }

    /// The whole number at `start` (spaces allowed before it; at most 12 digits), or nil when none is there.
    private static func number(at start: Int, in bytes: UnsafeRawBufferPointer) -> Int? {
        var index = start
        while index < bytes.count && bytes[index] == UInt8(ascii: " ") { index += 1 }
        var value = 0
        var digits = 0
        while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]), digits < 12 {
            value = value * 10 + Int(bytes[index] - UInt8(ascii: "0"))
            index += 1
            digits += 1
        }
        return digits > 0 ? value : nil
    }
}
