import NIOCore

/// How many tokens an answer generated, from llama-server's own numbers at the end of the response:
/// `"usage": {"completion_tokens": N}` (non-streamed answers, and the usage chunk of a stream that asks for one)
/// or `"timings": {"predicted_n": N}` (the last event of every llama-server stream). Only the tail of the
/// response is looked at — the gateway keeps its last two chunks — so the cost per chunk is nothing.
enum TokenCount {
    private static let keys: [[UInt8]] = [Array(#""completion_tokens":"#.utf8), Array(#""predicted_n":"#.utf8)]

    /// The generated-token count the tail reports, or nil when it has none.
    static func scan(_ tail: [ByteBuffer]) -> Int? {
        var bytes: [UInt8] = []
        for buffer in tail { bytes.append(contentsOf: buffer.readableBytesView) }
        var best: (position: Int, value: Int)?
        for key in keys {
            guard let (position, value) = lastValue(of: key, in: bytes) else { continue }
            if best == nil || position > best!.position { best = (position, value) }
        }
        return best?.value
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
