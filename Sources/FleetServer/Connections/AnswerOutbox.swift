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
///
/// A stream's chunks may also come straight from the curl thread (`AnswerRelay`): they go in when the outbox is
/// open (`admit`), else they are refused, the transfer pauses, and the relay is told (`RelayHook.resume`) once
/// the outbox opens again.
final class AnswerOutbox: Sendable {
    /// What the outbox tells the stream relayed into it.
    struct RelayHook: Sendable {
        /// The outbox is open again after it refused a chunk.
        let resume: @Sendable () -> Void
        /// Bytes the relay put in (as the upstream sent them) have been taken by the loop or dropped.
        let released: @Sendable (Int) -> Void
    }

    enum Admission { case open, full, closed }

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
        var relay: RelayHook?
        /// A relayed chunk was refused: the relay waits to be resumed.
        var relayRefused = false
        /// Upstream bytes the relay put in that the loop has not taken.
        var relayHeld = 0

        var open: Bool { writable && waiting < AnswerOutbox.maxWaiting }

        /// Adds body bytes, to the body part before them when there is one: what the loop takes goes down the
        /// pipeline in as few writes as it can.
        mutating func append(_ body: ByteBuffer) {
            waiting += body.readableBytes
            if case .body(var last) = parts.last {
                parts.removeLast()  // so that `last` is the only reference and grows in place
                var body = body
                last.writeBuffer(&body)
                parts.append(.body(last))
            } else {
                parts.append(.body(body))
            }
        }

        /// What to tell the relay now that the outbox may have opened.
        mutating func relayResume() -> (@Sendable () -> Void)? {
            guard relayRefused, open else { return nil }
            relayRefused = false
            return relay?.resume
        }
    }

    private let state = Mutex(State())

    /// The channel's writability changed (on the loop).
    func set(writable: Bool) {
        let (waiter, resume): (CheckedContinuation<Void, any Error>?, (@Sendable () -> Void)?) = state.withLock { state in
            state.writable = writable
            return (state.open ? state.waiter.take() : nil, state.relayResume())
        }
        waiter?.resume()
        resume?()
    }

    /// A stream is relayed into the outbox from now on.
    func startRelay(_ hook: RelayHook) {
        state.withLock { state in
            state.relay = hook
            state.relayRefused = false
        }
    }

    /// Whether a relayed chunk may go in now (always when `force`d, unless closed). When it may not, the relay
    /// is resumed once it may.
    func admit(force: Bool) -> Admission {
        state.withLock { state in
            if state.closed { return .closed }
            if force || state.open { return .open }
            state.relayRefused = true
            return .full
        }
    }

    /// Puts the parts of an answer in; returns whether the loop must be asked to take them (it was not yet).
    /// Nothing goes in once the channel has closed.
    /// - Parameter relayed: the upstream bytes a relayed chunk came from: released when the loop takes it (or at
    ///   once, when closed).
    func put(_ head: HTTPResponse?, _ body: ByteBuffer?, end: HTTPFields??, relayed: Int = 0) -> Bool {
        let (schedule, dropped): (Bool, RelayHook?) = state.withLock { state in
            if state.closed { return (false, relayed > 0 ? state.relay : nil) }
            if let head { state.parts.append(.head(head)) }
            if let body { state.append(body) }
            if let end { state.parts.append(.end(end)) }
            state.relayHeld += relayed
            defer { state.scheduled = true }
            return (!state.scheduled, nil)
        }
        dropped?.released(relayed)
        return schedule
    }

    /// Everything put in so far (on the loop, as it writes them to the channel).
    func take() -> [HTTPResponsePart] {
        var parts: [HTTPResponsePart] = []
        let (waiter, resume, relay, released): (CheckedContinuation<Void, any Error>?, (@Sendable () -> Void)?, RelayHook?, Int)
            = state.withLock { state in
                // Swapped out, not copied and emptied: an idle connection keeps no array.
                swap(&parts, &state.parts)
                state.waiting = 0
                state.scheduled = false
                defer { state.relayHeld = 0 }
                return (state.open ? state.waiter.take() : nil, state.relayResume(), state.relay, state.relayHeld)
            }
        waiter?.resume()
        if released > 0 { relay?.released(released) }
        resume?()
        return parts
    }

    func close() {
        let (waiter, relay, released): (CheckedContinuation<Void, any Error>?, RelayHook?, Int) = state.withLock { state in
            state.closed = true
            state.parts.removeAll()
            defer { state.relayHeld = 0 }
            return (state.waiter.take(), state.relay, state.relayHeld)
        }
        waiter?.resume(throwing: ChannelError.ioOnClosedChannel)
        if released > 0 { relay?.released(released) }
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
