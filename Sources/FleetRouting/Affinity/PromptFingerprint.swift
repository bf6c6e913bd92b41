/// A request's prompt as a chain of block fingerprints: the prompt's fields (for chat the `tools` and the
/// `messages`, for completions the `prompt`) are cut into blocks of `blockSize` bytes as the client sent them,
/// and block k's fingerprint hashes block k together with block k-1's fingerprint. Two requests that share
/// their first k blocks share their first k fingerprints; a change anywhere breaks the chain from there on.
/// Linear in the request's size, reading the body where it lies (no copy is made or kept).
public enum PromptFingerprint {
    /// Bytes per block: a few hundred, so a new turn's last partial block is all that does not match.
    public static let blockSize = 256

    /// The prompt's fields, in the order a chat template renders them, per route.
    public enum Shape: Sendable {
        /// `/v1/chat/completions`: tools, then messages.
        case chat
        /// `/v1/completions`: the prompt.
        case completion

        var keys: [[UInt8]] {
            switch self {
            case .chat: [Array("tools".utf8), Array("messages".utf8)]
            case .completion: [Array("prompt".utf8)]
            }
        }
    }

    /// The fingerprints of `body`'s prompt; empty when the body is not a JSON object or has none of the fields.
    public static func blocks(of body: some Collection<UInt8>, shape: Shape) -> [UInt64] {
        let result = body.withContiguousStorageIfAvailable { blocks(of: UnsafeRawBufferPointer($0), shape: shape) }
        return result ?? blocks(of: Array(body), shape: shape)
    }

    static func blocks(of bytes: UnsafeRawBufferPointer, shape: Shape) -> [UInt64] {
        let keys = shape.keys
        guard let ranges = TopLevelJSON.values(of: keys, in: bytes) else { return [] }
        var fingerprints: [UInt64] = []
        var chain: UInt64 = 0x9E37_79B9_7F4A_7C15
        for (index, range) in ranges.enumerated() {
            guard let range else { continue }
            // Which field the bytes come from is part of the chain: `tools` never matches `messages`.
            chain = mix(chain ^ UInt64(index + 1))
            fingerprints.reserveCapacity(fingerprints.count + range.count / blockSize + 1)
            var start = range.lowerBound
            while start < range.upperBound {
                let end = min(start + blockSize, range.upperBound)
                chain = hash(UnsafeRawBufferPointer(rebasing: bytes[start..<end]), seed: chain)
                fingerprints.append(chain)
                start = end
            }
        }
        return fingerprints
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
enum TopLevelJSON {
    /// The byte range of each key's value (nil when absent), or nil when `bytes` is not a JSON object.
    static func values(of keys: [[UInt8]], in bytes: UnsafeRawBufferPointer) -> [Range<Int>?]? {
        var ranges = [Range<Int>?](repeating: nil, count: keys.count)
        var i = skipSpace(bytes, 0)
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
