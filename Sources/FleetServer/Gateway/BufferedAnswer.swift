import NIOCore
import FleetUpstream

/// The start of an answer that is not streamed, read before anything goes to the client: when the whole answer
/// fits in the stream's window (llama-server's non-streamed answers do), the gateway sends head, body and end in
/// one write instead of three, and an answer that breaks on the way goes to another instance, since the client has
/// nothing of it yet.
struct BufferedAnswer {
    var body = ByteBuffer()
    /// When its first byte arrived.
    var firstByte: ContinuousClock.Instant?
    /// The body ended (whole, or `broken`) within the limit.
    var complete = false
    var broken: (any Error)?

    /// Reads `body` until it ends or more than `limit` bytes came; the rest, if any, stays in `body`. At most
    /// `limit` bytes (plus one chunk) are held here, besides the stream's own window.
    @inline(never)
    static func read(_ body: UpstreamBody, upTo limit: Int) async -> BufferedAnswer {
        var answer = BufferedAnswer()
        var chunks = body.makeAsyncIterator()
        do {
            while var chunk = try await chunks.next() {
                if answer.firstByte == nil {
                    answer.firstByte = .now
                    answer.body = chunk
                } else {
                    answer.body.writeBuffer(&chunk)
                }
                if answer.body.readableBytes > limit { return answer }
            }
        } catch {
            answer.broken = error
        }
        answer.complete = true
        return answer
    }
}
