import HTTPTypes
import NIOCore
import NIOHTTPTypes
import Synchronization

/// What a connection's answer hands from its task to the loop, and whether the channel takes more: the one state
/// shared between the two, behind one lock. The task puts parts in; the loop takes everything there in one go
/// (one wake-up of the loop and one flush for what came meanwhile: a stream's events that arrive while the loop is
/// busy leave together) and reports the channel's writability and its closing.
///
/// The task waits while the channel is not writable (the client does not read: NIO's high water mark, 64 KiB),
/// or while `maxWaiting` bytes it put in have not reached the channel yet, so what a connection holds stays
/// bounded even when the loop runs late.
final class AnswerOutbox: Sendable {
    static let maxWaiting = 64 * 1024

    private struct State {
        var writable = true
        var closed = false
        /// Parts put in that the loop has not taken yet, and their body bytes.
        var parts: [HTTPResponsePart] = []
        var waiting = 0
        /// The loop was asked to take them.
        var scheduled = false
        var waiter: CheckedContinuation<Void, any Error>?

        var open: Bool { writable && waiting < AnswerOutbox.maxWaiting }
    }

    private let state = Mutex(State())

    /// The channel's writability changed (on the loop).
    func set(writable: Bool) {
        let waiter: CheckedContinuation<Void, any Error>? = state.withLock { state in
            state.writable = writable
            return state.open ? state.waiter.take() : nil
        }
        waiter?.resume()
    }

    /// Puts the parts of an answer in; returns whether the loop must be asked to take them (it was not yet).
    func put(_ head: HTTPResponse?, _ body: ByteBuffer?, end: HTTPFields??) -> Bool {
        state.withLock { state in
            if let head { state.parts.append(.head(head)) }
            if let body {
                state.parts.append(.body(body))
                state.waiting += body.readableBytes
            }
            if let end { state.parts.append(.end(end)) }
            defer { state.scheduled = true }
            return !state.scheduled
        }
    }

    /// Everything put in so far (on the loop, as it writes them to the channel).
    func take() -> [HTTPResponsePart] {
        let (parts, waiter): ([HTTPResponsePart], CheckedContinuation<Void, any Error>?) = state.withLock { state in
            // Swapped out, not copied and emptied: an idle connection keeps no array.
            var parts: [HTTPResponsePart] = []
            swap(&parts, &state.parts)
            state.waiting = 0
            state.scheduled = false
            return (parts, state.open ? state.waiter.take() : nil)
        }
        waiter?.resume()
        return parts
    }

    func close() {
        let waiter: CheckedContinuation<Void, any Error>? = state.withLock { state in
            state.closed = true
            state.parts.removeAll()
            return state.waiter.take()
        }
        waiter?.resume(throwing: ChannelError.ioOnClosedChannel)
    }

    /// Returns at once while the channel takes writes, else once it does again; throws once it has closed.
    func ready() async throws {
        enum Now { case go, closed, wait }
        let now: Now = state.withLock { $0.closed ? .closed : $0.open ? .go : .wait }
        switch now {
        case .go: return
        case .closed: throw ChannelError.ioOnClosedChannel
        case .wait:
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let now: Now = state.withLock { state in
                    if state.closed { return .closed }
                    if state.open { return .go }
                    state.waiter = continuation
                    return .wait
                }
                switch now {
                case .go: continuation.resume()
                case .closed: continuation.resume(throwing: ChannelError.ioOnClosedChannel)
                case .wait: break
                }
            }
        }
    }
}
