/// A request's prompt as a chain of block fingerprints: what a chat template renders (for chat the `tools`, then
/// each message's role, name, content, tool calls and tool call id; for completions the `prompt`), as the client
/// sent those values, is cut into blocks of `blockSize` bytes, and block k's fingerprint hashes block k together
/// with block k-1's fingerprint. Two requests that share their first k blocks share their first k fingerprints;
/// a change anywhere breaks the chain from there on. Fields a template ignores (`refusal`, `annotations`, the
/// order of a message's keys, sampling settings) do not count, so an SDK that resends an answer with more fields
/// than it got still matches. Linear in the request's size, reading the body where it lies; nothing is kept.
public enum PromptFingerprint {
    /// Bytes per block: a few hundred, so a new turn's last partial block is all that does not match.
    public static let blockSize = 256
    /// About how many tokens a block holds (≈ 4 bytes per token): what a matched prefix costs to evaluate again.
    public static let tokensPerBlock = blockSize / 4

    /// Which fields of a request make its prompt.
    public enum Shape: Sendable {
        /// `/v1/chat/completions`: tools, then messages.
        case chat
        /// `/v1/completions` and llama-server's `/completion`: the prompt.
        case completion
        /// Anthropic's `/v1/messages`: system, tools, then messages.
        case anthropic
        /// OpenAI's `/v1/responses`: instructions, tools, then input (as sent).
        case responses

        /// The top-level fields in the order a template renders them; `messages` are hashed message by message.
        var fields: [(key: [UInt8], messages: Bool)] {
            switch self {
            case .chat: Self.chatFields
            case .completion: Self.completionFields
            case .anthropic: Self.anthropicFields
            case .responses: Self.responsesFields
            }
        }

        // Built once: every request reads them.
        private static func key(_ name: String) -> [UInt8] { Array(name.utf8) }
        private static let chatFields = [(key("tools"), false), (key("messages"), true)]
        private static let completionFields = [(key("prompt"), false)]
        private static let anthropicFields = [(key("system"), false), (key("tools"), false), (key("messages"), true)]
        private static let responsesFields = [(key("instructions"), false), (key("tools"), false), (key("input"), false)]
    }

    /// A message's fields, in the order they are hashed (whatever order the client wrote them in).
    private static let messageKeys = ["role", "name", "content", "tool_calls", "tool_call_id"].map { Array($0.utf8) }

    /// The fingerprints of `body`'s prompt; empty when the body is not a JSON object or has none of the fields.
    public static func blocks(of body: some Collection<UInt8>, shape: Shape) -> [UInt64] {
        let result = body.withContiguousStorageIfAvailable { blocks(of: UnsafeRawBufferPointer($0), shape: shape) }
        return result ?? blocks(of: Array(body), shape: shape)
    }

    static func blocks(of bytes: UnsafeRawBufferPointer, shape: Shape) -> [UInt64] {
        var hasher = BlockHasher(bytes.count)
        let fields = shape.fields
        guard let ranges = TopLevelJSON.values(of: fields.map(\.key), in: bytes),
              let last = ranges.last, last != nil else { return [] }
        for (index, (field, range)) in zip(fields, ranges).enumerated() {
            guard let range else { continue }
            // Which field the bytes come from is part of the chain: `tools` never matches `messages`.
            let marker = UInt8(index + 1) &* 16
            guard field.messages else {
                hasher.field(marker, bytes, range)
                continue
            }
            guard let elements = TopLevelJSON.elements(in: bytes, range) else { return [] }
            for element in elements {
                guard let values = TopLevelJSON.values(of: messageKeys, in: bytes, element) else { return [] }
                hasher.field(marker, bytes, 0..<0)  // where a message begins
                for (key, value) in values.enumerated() {
                    if let value { hasher.field(marker + UInt8(key + 1), bytes, value) }
                }
            }
        }
        return hasher.finish()
    }

    /// Cuts a stream of byte ranges into blocks and chains their hashes.
    struct BlockHasher {
        private var buffer = [UInt8](repeating: 0, count: blockSize)
        private var filled = 0
        private var chain: UInt64 = 0x9E37_79B9_7F4A_7C15
        private(set) var fingerprints: [UInt64] = []

        init(_ expectedBytes: Int) {
            fingerprints.reserveCapacity(expectedBytes / blockSize + 1)
        }

        /// A field's marker (what it is is part of the chain: `tools` never matches `messages`), then its bytes.
        mutating func field(_ marker: UInt8, _ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) {
            withUnsafeBytes(of: marker) { feed($0) }
            feed(UnsafeRawBufferPointer(rebasing: bytes[range]))
        }

        mutating func feed(_ bytes: UnsafeRawBufferPointer) {
            var offset = 0
            while offset < bytes.count {
                if filled == 0 && bytes.count - offset >= blockSize {
                    // A whole block in place: hashed where it lies.
                    emit(UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + blockSize]))
                    offset += blockSize
                    continue
                }
                let take = min(blockSize - filled, bytes.count - offset)
                buffer.withUnsafeMutableBytes { target in
                    target.baseAddress!.advanced(by: filled).copyMemory(from: bytes.baseAddress!.advanced(by: offset), byteCount: take)
                }
                filled += take
                offset += take
                if filled == blockSize {
                    buffer.withUnsafeBytes { emit($0) }
                    filled = 0
                }
            }
        }

        private mutating func emit(_ block: UnsafeRawBufferPointer) {
            chain = PromptFingerprint.hash(block, seed: chain)
            fingerprints.append(chain)
        }

        /// Every fingerprint, the last partial block's included.
        mutating func finish() -> [UInt64] {
            if filled > 0 {
                buffer.withUnsafeBytes { emit(UnsafeRawBufferPointer(rebasing: $0[0..<filled])) }
                filled = 0
            }
            return fingerprints
        }
    }

    /// A fast 64-bit hash of one block, seeded by the chain so far (not cryptographic: a collision only
    /// sends a request to a replica that does not hold its prefix).
    static func hash(_ block: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        var h = seed ^ (UInt64(block.count) &* 0xFF51_AFD7_ED55_8CCD)
        var offset = 0
        while offset + 8 <= block.count {
            let word = block.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            h = (h ^ mix(word)) &* 0x9E37_79B9_7F4A_7C15
            h = (h << 31) | (h >> 33)
            offset += 8
        }
        var last: UInt64 = 0
        var shift: UInt64 = 0
        while offset < block.count {
            last |= UInt64(block[offset]) << shift
            shift += 8
            offset += 1
        }
        return mix(h ^ mix(last ^ 0xC2B2_AE3D_27D4_EB4F))
    }

    /// MurmurHash3's 64-bit finalizer: every input bit affects every output bit.
    @inline(__always) static func mix(_ value: UInt64) -> UInt64 {
        var x = value
        x ^= x >> 33
        x &*= 0xFF51_AFD7_ED55_8CCD
        x ^= x >> 33
        x &*= 0xC4CE_B9FE_1A85_EC53
        x ^= x >> 33
        return x
    }
}

/// Finds the values of a JSON object's top-level keys without parsing them: one pass over the bytes, strings
/// and nesting skipped. Keys are compared as written (no escape decoding: field names never need one).
package enum TopLevelJSON {
    /// The byte range of each key's value (nil when absent), or nil when `bytes[range]` is not a JSON object.
    package static func values(of keys: [[UInt8]], in bytes: UnsafeRawBufferPointer, _ range: Range<Int>? = nil) -> [Range<Int>?]? {
        let bytes = range.map { UnsafeRawBufferPointer(rebasing: bytes[..<$0.upperBound]) } ?? bytes
        var ranges = [Range<Int>?](repeating: nil, count: keys.count)
        var i = skipSpace(bytes, range?.lowerBound ?? 0)
        guard i < bytes.count, bytes[i] == UInt8(ascii: "{") else { return nil }
        i = skipSpace(bytes, i + 1)
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") { return ranges }
        while i < bytes.count {
            guard bytes[i] == UInt8(ascii: "\""), let keyEnd = stringEnd(bytes, i) else { return nil }
            let key = (i + 1)..<(keyEnd - 1)
            i = skipSpace(bytes, keyEnd)
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { return nil }
            i = skipSpace(bytes, i + 1)
            guard let valueEnd = valueEnd(bytes, i) else { return nil }
            for (index, wanted) in keys.enumerated() where ranges[index] == nil && wanted.count == key.count {
                if UnsafeRawBufferPointer(rebasing: bytes[key]).elementsEqual(wanted) { ranges[index] = i..<valueEnd }
            }
            i = skipSpace(bytes, valueEnd)
            guard i < bytes.count else { return nil }
            if bytes[i] == UInt8(ascii: "}") { return ranges }
            guard bytes[i] == UInt8(ascii: ",") else { return nil }
            i = skipSpace(bytes, i + 1)
        }
        return nil
    }

    /// The byte range of each element of the array at `range`, or nil when it is not an array.
    static func elements(in bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> [Range<Int>]? {
        let bytes = UnsafeRawBufferPointer(rebasing: bytes[..<range.upperBound])
        var i = skipSpace(bytes, range.lowerBound)
        guard i < bytes.count, bytes[i] == UInt8(ascii: "[") else { return nil }
        var elements: [Range<Int>] = []
        i = skipSpace(bytes, i + 1)
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") { return elements }
        while i < bytes.count {
            guard let end = valueEnd(bytes, i) else { return nil }
            elements.append(i..<end)
            i = skipSpace(bytes, end)
            guard i < bytes.count else { return nil }
            if bytes[i] == UInt8(ascii: "]") { return elements }
            guard bytes[i] == UInt8(ascii: ",") else { return nil }
            i = skipSpace(bytes, i + 1)
        }
        return nil
    }

    private static func skipSpace(_ bytes: UnsafeRawBufferPointer, _ start: Int) -> Int {
        var i = start
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
        return i
    }

    /// The index just past the string starting (with its quote) at `start`.
    private static func stringEnd(_ bytes: UnsafeRawBufferPointer, _ start: Int) -> Int? {
        var i = start + 1
        while i < bytes.count {
            switch bytes[i] {
            case UInt8(ascii: "\\"): i += 2
            case UInt8(ascii: "\""): return i + 1
            default: i += 1
            }
        }
        return nil
    }

    /// The index just past the value starting at `start`.
    private static func valueEnd(_ bytes: UnsafeRawBufferPointer, _ start: Int) -> Int? {
        guard start < bytes.count else { return nil }
        switch bytes[start] {
        case UInt8(ascii: "\""):
            return stringEnd(bytes, start)
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            var i = start
            while i < bytes.count {
                switch bytes[i] {
                case UInt8(ascii: "\""):
                    guard let end = stringEnd(bytes, i) else { return nil }
                    i = end
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 { return i + 1 }
                default:
                    break
                }
                i += 1
            }
            return nil
        default:
            var i = start
            scalar: while i < bytes.count {
                switch bytes[i] {
                case UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x0A, 0x0D, 0x09: break scalar
                default: i += 1
                }
            }
            return i > start ? i : nil
        }
    }
}
