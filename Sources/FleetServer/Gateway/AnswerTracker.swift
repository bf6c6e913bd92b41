import NIOCore
import FleetUpstream

/// What the forwarder keeps of an answer as its chunks pass to the client, and what of each chunk the client
/// gets: the first chunk and the last two (where llama-server reports its token counts, `AnswerFigures`), whether
/// what the client got so far ends between two events (where an error event may follow), and the model field
/// renamed to the name the client asked for. The same for an answer the request's task reads and for one the curl
/// thread relays (`AnswerRelay`).
struct AnswerTracker: Sendable {
    /// The name the client asked for, in UTF-8 (made once for all the answer's events), when the model field is
    /// renamed.
    private let rename: [UInt8]?
    let streaming: Bool
    /// When the first chunk came.
    private(set) var firstChunkAt: ContinuousClock.Instant?
    private(set) var head: ByteBuffer?
    private(set) var tail: [ByteBuffer] = []
    private(set) var atEventBoundary = true
    private var framer = SSEFramer()
    /// A renamed answer that is not streamed, whole (its model field may come anywhere).
    private var whole = ByteBuffer()

    init(rename: String?, streaming: Bool) {
        self.rename = rename.map { Array($0.utf8) }
        self.streaming = streaming
    }

    /// Takes `chunk`; returns what of it goes to the client now. The clock is read for the first chunk only.
    mutating func pass(_ chunk: ByteBuffer, at now: @autoclosure () -> ContinuousClock.Instant) -> ByteBuffer? {
        if firstChunkAt == nil {
            firstChunkAt = now()
            head = chunk
        }
        if tail.count == 2 { tail.removeFirst() }
        tail.append(chunk)
        guard let rename else {
            if streaming { atEventBoundary = Self.endsEvent(chunk) }
            return chunk
        }
        if streaming {
            // The events this chunk completes, renamed, in one write.
            return framer.feedWhole(chunk).map { ModelFieldRewriter.rewrite($0, to: rename) }
        }
        var chunk = chunk
        whole.writeBuffer(&chunk)
        return nil
    }

    /// What goes to the client after the last chunk (a renamed answer's rest).
    mutating func rest() -> [ByteBuffer] {
        guard let rename else { return [] }
        var rest: [ByteBuffer] = []
        if let events = framer.flush() { rest.append(events) }
        if whole.readableBytes > 0 { rest.append(ModelFieldRewriter.rewrite(whole, to: rename)) }
        return rest
    }

    /// Whether a chunk of an event stream ends where an event does (a blank line).
    private static func endsEvent(_ chunk: ByteBuffer) -> Bool {
        let view = chunk.readableBytesView
        guard view.count >= 2 else { return false }
        return view[view.index(view.endIndex, offsetBy: -1)] == UInt8(ascii: "\n")
            && view[view.index(view.endIndex, offsetBy: -2)] == UInt8(ascii: "\n")
    }
}
