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

    /// Every key looked for (`KeyHits`); the indices below name them.
    private static let keys = KeyHits.Keys(["completion_tokens", "predicted_n", "output_tokens", "cache_read_input_tokens",
                                            "input_tokens", "cache_n", "prompt_n", "prompt_ms", "cached_tokens", "prompt_tokens"])
    private static let completion = [0, 1, 2]
    private static let cacheRead = 3, inputTokens = 4, cacheN = 5, promptN = 6, promptMs = 7, cachedTokens = 8,
                       promptTokens = 9

    /// How much of the tail, and of the head, is looked at. llama-server writes its figures last (`usage` and
    /// `timings` close a plain answer; a stream's are in its last event and the usage chunk before it, a few
    /// hundred bytes), but a chunk can hold many events: a stream's writes carry what came meanwhile.
    static let scanned = 4096

    /// The figures the tail reports (each nil when it has none).
    ///
    /// The bytes are read where they lie, not gathered into one array first (which was a tenth of the pool's work
    /// per stream, docs/benchmarks.md): the last chunk, the end of the one before when the last is shorter than
    /// `scanned`, and the bytes either side of the seam between them, where a key and its number may be split.
    static func scan(_ tail: [ByteBuffer], head: ByteBuffer? = nil) -> AnswerFigures {
        var hits = KeyHits(keys)
        // The first buffer that reaches into the last `scanned` bytes, and how much of it lies before them.
        var first = tail.endIndex
        var rest = scanned
        while first > tail.startIndex, rest > 0 {
            first -= 1
            rest -= tail[first].readableBytes
        }
        var offset = 0
        var previous: ByteBuffer?
        for index in first..<tail.endIndex {
            var part = tail[index]
            if index == first, rest < 0 { part.moveReaderIndex(forwardBy: -rest) }
            if let previous { hits.seam(previous, part, at: offset) }
            part.withUnsafeReadableBytes { hits.add($0, at: offset) }
            offset += part.readableBytes
            previous = part
        }
        var figures = AnswerFigures()
        var best: KeyHits.Hit?
        for key in completion {
            guard let hit = hits[key] else { continue }
            if best == nil || hit.position > best!.position { best = hit }
        }
        figures.completionTokens = best?.value
        if let cached = hits[cacheN]?.value, let evaluated = hits[promptN]?.value {
            figures.promptCache = PromptCacheCounts(promptTokens: cached + evaluated, cachedTokens: cached)
            if evaluated >= 16, let milliseconds = hits[promptMs].map({ $0.decimal ?? Double($0.value) }) {
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
        var hits = KeyHits(keys)
        head.withUnsafeReadableBytes { hits.add(UnsafeRawBufferPointer(rebasing: $0.prefix(scanned)), at: 0) }
        return hits[cacheRead] != nil ? hits : nil
    }
}

/// Where each of some JSON keys (`"name":`) last occurs followed by a number, and that number. The keys all end
/// in one of a few endings (`_tokens":`, `_n":`, `_ms":`): one pass from underscore to underscore (`memchr`), a
/// key's name compared only where an ending follows one and a number that. An answer's figures are looked for on
/// every request, and an underscore is rarer in its tail than a colon (one key in five has one). Bytes are added
/// part by part, in order; a later part's hit replaces an earlier one at the same position or before.
private struct KeyHits {
    struct Keys {
        /// Each key as it is written, quoted, with its colon.
        let names: [[UInt8]]
        /// What the names end with, from their last `_` on.
        let endings: [[UInt8]]

        init(_ names: [String]) {
            self.names = names.map { Array("\"\($0)\":".utf8) }
            var endings: [[UInt8]] = []
            for name in self.names {
                let ending = Array(name[name.lastIndex(of: UInt8(ascii: "_"))!...])
                if !endings.contains(ending) { endings.append(ending) }
            }
            self.endings = endings
        }
    }

    struct Hit {
        /// Where the key starts, counted over all the parts added.
        var position: Int
        var value: Int
        /// The number as a decimal (`41.09`), when it has a fraction or an exponent.
        var decimal: Double?
    }

    private let keys: Keys
    private var hits: [Hit?]

    init(_ keys: Keys) {
        self.keys = keys
        hits = Array(repeating: nil, count: keys.names.count)
    }

    subscript(key: Int) -> Hit? { hits[key] }

    /// The keys found in `raw`, which starts at `offset` of the whole.
    mutating func add(_ raw: UnsafeRawBufferPointer, at offset: Int) {
        guard let base = raw.baseAddress else { return }
        var index = 0
        while index < raw.count, let found = memchr(base + index, Int32(UInt8(ascii: "_")), raw.count - index) {
            let underscore = base.distance(to: UnsafeRawPointer(found))
            index = underscore + 1
            // Most underscores in an answer are in other keys (`finish_reason`): the byte after one tells.
            guard underscore + 1 < raw.count else { break }
            let next = raw[underscore + 1]
            var matched: [UInt8]?
            for ending in keys.endings where ending[1] == next && underscore + ending.count <= raw.count
                && ending.withUnsafeBytes({ memcmp(base + underscore, $0.baseAddress!, ending.count) }) == 0 {
                matched = ending
                break
            }
            guard let ending = matched else { continue }
            let colon = underscore + ending.count - 1
            index = colon + 1
            guard let (value, digits) = Self.number(at: colon + 1, in: raw) else { continue }
            // The key's opening quote.
            var start = underscore - 1
            while start >= 0, raw[start] != UInt8(ascii: "\"") { start -= 1 }
            guard start >= 0 else { continue }
            let length = colon + 1 - start
            for (k, name) in keys.names.enumerated() where name.count == length
                && name.withUnsafeBytes({ memcmp(base + start, $0.baseAddress!, length) }) == 0 {
                if let hit = hits[k], hit.position > offset + start { break }
                hits[k] = Hit(position: offset + start, value: value, decimal: Self.decimal(digits, in: raw))
                break
            }
        }
    }

    /// The keys that straddle the seam between `before` and `after` (which starts at `offset`): read from a copy
    /// of the bytes either side of it. A key and its number are shorter than `margin`.
    mutating func seam(_ before: ByteBuffer, _ after: ByteBuffer, at offset: Int) {
        let margin = 64
        let left = min(margin, before.readableBytes), right = min(margin, after.readableBytes)
        guard left > 0, right > 0 else { return }
        withUnsafeTemporaryAllocation(byteCount: 2 * margin, alignment: 1) { window in
            before.withUnsafeReadableBytes { window.baseAddress!.copyMemory(from: $0.baseAddress! + $0.count - left, byteCount: left) }
            after.withUnsafeReadableBytes { (window.baseAddress! + left).copyMemory(from: $0.baseAddress!, byteCount: right) }
            var seam = KeyHits(keys)
            seam.add(UnsafeRawBufferPointer(rebasing: window[..<(left + right)]), at: offset - left)
            for (k, hit) in seam.hits.enumerated() {
                // Those whose key starts before the seam: the rest, `after` itself has.
                guard let hit, hit.position < offset else { continue }
                if let old = hits[k], old.position > hit.position { continue }
                hits[k] = hit
            }
        }
    }

    /// The whole number at `start` (spaces allowed before it; at most 12 digits) and where its digits are, or nil
    /// when no digit is there.
    private static func number(at start: Int, in bytes: UnsafeRawBufferPointer) -> (Int, Range<Int>)? {
        var index = start
        while index < bytes.count && bytes[index] == UInt8(ascii: " ") { index += 1 }
        let first = index
        var value = 0
        while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]), index - first < 12 {
            value = value * 10 + Int(bytes[index] - UInt8(ascii: "0"))
            index += 1
        }
        return index > first ? (value, first..<index) : nil
    }

    /// The number whose whole part is at `digits`, with its fraction and exponent (`41.09`), when it has either.
    private static func decimal(_ digits: Range<Int>, in bytes: UnsafeRawBufferPointer) -> Double? {
        var end = digits.upperBound
        while end < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[end]) || bytes[end] == UInt8(ascii: ".")
                || bytes[end] == UInt8(ascii: "e") || bytes[end] == UInt8(ascii: "-") || bytes[end] == UInt8(ascii: "+") {
            end += 1
        }
        guard end > digits.upperBound else { return nil }
        return Double(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[digits.lowerBound..<end]), as: UTF8.self))
    }
}
