import Glibc

/// Finds the data in an HTTP/1.1 chunked body (RFC 9112, section 7.1) as it arrives, in pieces cut anywhere.
///
/// curl decodes chunks itself, and then calls its write callback once per chunk: llama-server sends each event of
/// a stream as a chunk of its own, so a 32-token answer took 34 callbacks, each through the body's lock (a fifth of
/// the curl thread's time under 64 streams, docs/benchmarks.md, twelfth pass). With curl's transfer decoding off
/// (`CURLOPT_HTTP_TRANSFER_DECODING`), the callback gets what each read brought, framing and all, and this finds
/// the data in it: one callback per read. curl still follows the chunks itself to know where the body ends.
///
/// A value: the transfer decodes into a copy and keeps it only when the body took the bytes, so that bytes curl
/// offers again after a pause are decoded again from the same state.
struct ChunkedDecoder: Sendable, Equatable {
    private enum State: Sendable, Equatable {
        /// Reading a chunk's size: its value so far and how many hex digits it had.
        case size(Int, digits: Int)
        /// After the size: an extension, then the line's end.
        case sizeLine(Int)
        /// In a chunk's data: how many bytes are left of it.
        case data(Int)
        /// After a chunk's data: its line end (a CR was seen when true).
        case dataEnd(sawCR: Bool)
        /// At the start of a trailer line, or of the blank line that ends the body.
        case trailerStart
        /// In a trailer field line, until its end.
        case trailerLine
        /// The blank line's CR was seen.
        case endCR
        /// The body has ended: anything after it is not the body's.
        case done
    }

    struct Malformed: Error, Equatable, CustomStringConvertible {
        var reason: String
        var description: String { "malformed chunked encoding from the upstream: \(reason)" }
    }

    private var state = State.size(0, digits: 0)

    /// The body's last chunk and trailers have come.
    var ended: Bool { state == .done }

    /// Appends to `data` the ranges of `bytes` that are chunk data, in order.
    /// - Throws: `Malformed` when the bytes are not a chunked body.
    mutating func decode(_ bytes: UnsafeRawBufferPointer, into data: inout [Range<Int>]) throws(Malformed) {
        guard let base = bytes.baseAddress else { return }
        let end = bytes.count
        var index = 0
        /// The index after the next line feed from `index`, or nil when the bytes end first.
        func afterLineFeed() -> Int? {
            guard let found = memchr(base + index, 0x0A, end - index) else { return nil }
            return base.distance(to: UnsafeRawPointer(found)) + 1
        }
        while index < end {
            switch state {
            case .size(let value, let digits):
                let byte = bytes[index]
                if let digit = Self.hexValue(byte) {
                    // Leading zeros are allowed; a size past what an Int holds is not.
                    guard value <= Int.max >> 4 else { throw Malformed(reason: "a chunk size too large") }
                    state = .size(value << 4 | digit, digits: digits + 1)
                    index += 1
                } else {
                    guard digits > 0 else { throw Malformed(reason: "no chunk size where one was due") }
                    state = .sizeLine(value)
                }
            case .sizeLine(let size):
                guard let next = afterLineFeed() else {
                    index = end
                    continue
                }
                index = next
                state = size == 0 ? .trailerStart : .data(size)
            case .data(let left):
                let count = min(left, end - index)
                data.append(index..<(index + count))
                index += count
                state = count == left ? .dataEnd(sawCR: false) : .data(left - count)
            case .dataEnd(let sawCR):
                let byte = bytes[index]
                index += 1
                if byte == 0x0D, !sawCR {
                    state = .dataEnd(sawCR: true)
                } else if byte == 0x0A {
                    state = .size(0, digits: 0)
                } else {
                    throw Malformed(reason: "a chunk's data is longer than its size")
                }
            case .trailerStart:
                let byte = bytes[index]
                index += 1
                state = byte == 0x0D ? .endCR : byte == 0x0A ? .done : .trailerLine
            case .trailerLine:
                guard let next = afterLineFeed() else {
                    index = end
                    continue
                }
                index = next
                state = .trailerStart
            case .endCR:
                guard bytes[index] == 0x0A else { throw Malformed(reason: "no line feed after the body's last line") }
                index += 1
                state = .done
            case .done:
                return
            }
        }
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case 0x30...0x39: Int(byte - 0x30)
        case 0x41...0x46: Int(byte - 0x41 + 10)
        case 0x61...0x66: Int(byte - 0x61 + 10)
        default: nil
        }
    }
}
