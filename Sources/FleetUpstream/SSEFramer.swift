import Glibc
public import NIOCore

/// Cuts a Server-Sent Events byte stream into whole events (each ending in a blank line), whatever the chunk
/// boundaries were. Only needed where an event must be seen whole (to rewrite it); passthrough streams skip it.
public struct SSEFramer: Sendable {
    private var pending = ByteBuffer()

    public init() {}

    /// The events completed by `chunk`, each with its terminating blank line.
    public mutating func feed(_ chunk: ByteBuffer) -> [ByteBuffer] {
        var chunk = chunk
        pending.writeBuffer(&chunk)
        var events: [ByteBuffer] = []
        while let end = Self.eventEnd(in: pending) {
            events.append(pending.readSlice(length: end)!)
        }
        if pending.readerIndex > 4096 { pending.discardReadBytes() }
        return events
    }

    /// The events completed by `chunk`, together as one buffer (what a proxy writes at once), or nil when `chunk`
    /// completes none.
    ///
    /// Nothing is copied when the chunk ends where an event does (as llama-server's chunks do): only an unfinished
    /// event is kept, in a buffer of its own size, so a stream holds no buffer between chunks.
    public mutating func feedWhole(_ chunk: ByteBuffer) -> ByteBuffer? {
        var input = chunk
        if pending.readableBytes > 0 {
            input = pending
            input.writeImmutableBuffer(chunk)
        }
        var rest = input
        while let end = Self.eventEnd(in: rest) { rest.moveReaderIndex(forwardBy: end) }
        let length = rest.readerIndex - input.readerIndex
        if rest.readableBytes > 0 {
            var kept = ByteBuffer()
            kept.reserveCapacity(rest.readableBytes)
            kept.writeImmutableBuffer(rest)
            pending = kept
        } else if pending.readableBytes > 0 {
            pending = ByteBuffer()
        }
        return length > 0 ? input.getSlice(at: input.readerIndex, length: length) : nil
    }

    /// Whatever is left when the stream ends (an event without its blank line), or nil.
    public mutating func flush() -> ByteBuffer? {
        guard pending.readableBytes > 0 else { return nil }
        defer { pending.clear() }
        return pending.readSlice(length: pending.readableBytes)
    }

    /// Length up to and including the first "\n\n" (or "\r\n\r\n"), from the reader index.
    private static func eventEnd(in buffer: ByteBuffer) -> Int? {
        buffer.withUnsafeReadableBytes { bytes -> Int? in
            guard let base = bytes.baseAddress else { return nil }
            var index = 0
            // From line feed to line feed (memchr), not byte by byte.
            while index + 1 < bytes.count, let found = memchr(base + index, 0x0A, bytes.count - index - 1) {
                index = base.distance(to: UnsafeRawPointer(found))
                if bytes[index + 1] == 0x0A { return index + 2 }
                if bytes[index + 1] == 0x0D, index + 2 < bytes.count, bytes[index + 2] == 0x0A { return index + 3 }
                index += 1
            }
            return nil
        }
    }
}

/// Rewrites the `"model":"…"` fields of a JSON text (a response body or one SSE event) to the name the client
/// asked for: llama-server writes its own name there.
public enum ModelFieldRewriter {
    private static let key = Array(#""model":""#.utf8)

    public static func rewrite(_ buffer: ByteBuffer, to name: String) -> ByteBuffer {
        rewrite(buffer, to: Array(name.utf8))
    }

    /// The same with the name's UTF-8 bytes, for a caller that rewrites many events to one name.
    public static func rewrite(_ buffer: ByteBuffer, to name: [UInt8]) -> ByteBuffer {
        let rewritten: ByteBuffer? = buffer.withUnsafeReadableBytes { bytes in
            // Copied only from the first value that differs; an answer that already names the model is returned as
            // it is.
            guard let base = bytes.baseAddress else { return nil }
            var output: ByteBuffer?
            var copied = 0
            var index = 0
            while let found = findBytes(key, in: bytes, from: index, anchor: 1) {
                let valueStart = found + key.count
                guard valueStart < bytes.count,
                      let quote = memchr(base + valueStart, Int32(UInt8(ascii: "\"")), bytes.count - valueStart) else { break }
                let close = base.distance(to: UnsafeRawPointer(quote))
                let same = close - valueStart == name.count
                    && (name.isEmpty || name.withUnsafeBytes { memcmp(base + valueStart, $0.baseAddress!, name.count) == 0 })
                if !same {
                    if output == nil {
                        output = ByteBuffer()
                        output!.reserveCapacity(bytes.count + name.count)
                    }
                    output!.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[copied..<valueStart]))
                    output!.writeBytes(name)
                    copied = close
                }
                index = close
            }
            output?.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[copied...]))
            return output
        }
        return rewritten ?? buffer
    }
}
