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

    /// Whatever is left when the stream ends (an event without its blank line), or nil.
    public mutating func flush() -> ByteBuffer? {
        guard pending.readableBytes > 0 else { return nil }
        defer { pending.clear() }
        return pending.readSlice(length: pending.readableBytes)
    }

    /// Length up to and including the first "\n\n" (or "\r\n\r\n"), from the reader index.
    private static func eventEnd(in buffer: ByteBuffer) -> Int? {
        buffer.withUnsafeReadableBytes { bytes -> Int? in
            var index = 0
            while index + 1 < bytes.count {
                if bytes[index] == 0x0A {
                    if bytes[index + 1] == 0x0A { return index + 2 }
                    if bytes[index + 1] == 0x0D, index + 2 < bytes.count, bytes[index + 2] == 0x0A { return index + 3 }
                }
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
        let bytes = Array(buffer.readableBytesView)
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count + name.utf8.count)
        var index = 0
        var changed = false
        while index < bytes.count {
            if bytes[index] == key[0], index + key.count <= bytes.count, Array(bytes[index..<(index + key.count)]) == key,
               let close = bytes[(index + key.count)...].firstIndex(of: UInt8(ascii: "\"")) {
                output.append(contentsOf: key)
                output.append(contentsOf: name.utf8)
                index = close
                changed = true
            } else {
                output.append(bytes[index])
                index += 1
            }
        }
        return changed ? ByteBuffer(bytes: output) : buffer
    }
}
