public import NIOCore
import Synchronization

/// The body of an upstream answer as it streams, from the curl thread to one consumer, through a bounded
/// window: once `window` bytes wait for the consumer (queued, or taken and still being written to a client that
/// does not read), the transfer is paused (`CURL_WRITEFUNC_PAUSE`: curl stops reading the socket, so the
/// upstream's sends block), and resumed when the consumer asks again with at most half the window left. Memory
/// per stream is bounded by the window plus one chunk.
///
/// Chunks that wait when the consumer asks are handed over as one buffer: a consumer that fell behind catches
/// up in one write instead of one per chunk. A waiting consumer is only woken by a chunk; it takes what has
/// come by the time it runs, so the events curl decodes from one read (one HTTP chunk each) go out together.
///
/// Dropping every copy of the body before its end (or cancelling the task waiting in it) cancels the transfer.
///
/// Instead of being iterated, a body can be relayed (`relay(to:)`): the curl thread then hands what it read for the
/// body in each pass of its loop straight to an `UpstreamBodyRelay` (the gateway's connection), with no task between
/// the two; what the relay refuses waits in the window, and a full window pauses the transfer.
public struct UpstreamBody: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer

    /// The most a stream holds in the controller while its client does not read (plus one chunk): 64 KiB.
    public static let defaultWindow = 64 * 1024

    let handoff: Handoff
    /// Only the consumer's copies hold it: when the last goes, an unfinished transfer is cancelled.
    private let consumer: Consumer

    init(handoff: Handoff) {
        self.handoff = handoff
        self.consumer = Consumer(handoff: handoff)
    }

    /// The most bytes this body holds for its consumer (see `defaultWindow`).
    public var window: Int { handoff.window }

    public func makeAsyncIterator() -> Iterator { Iterator(body: self) }

    /// From now on the body's chunks go to `relay`, on the curl thread, and so does its end; what came before goes
    /// first, on the calling thread. Call it once, and never iterate the body afterwards.
    public func relay(to relay: any UpstreamBodyRelay) {
        handoff.relay(to: relay)
    }

    /// What a relay tells the body when it can take bytes again, or when bytes it took have left.
    public var relayControl: RelayControl { RelayControl(handoff: handoff) }

    /// The relay's way back to its body (it holds this, not the body, whose last copy cancels the transfer).
    public struct RelayControl: Sendable {
        let handoff: Handoff

        /// The relay refused bytes and can take them again: they go to it, and the paused transfer goes on.
        public func resume() { handoff.resumeRelay() }

        /// `count` bytes the relay took have left the controller (they no longer count as held for the client).
        public func delivered(_ count: Int) { handoff.relayed(count) }
    }

    public struct Iterator: AsyncIteratorProtocol {
        let body: UpstreamBody

        public mutating func next() async throws -> ByteBuffer? {
            try await body.handoff.next()
        }
    }

    private final class Consumer: Sendable {
        let handoff: Handoff
        init(handoff: Handoff) { self.handoff = handoff }
        deinit { handoff.consumerLeft() }
    }

    /// The state between the curl thread (which offers chunks and ends the body) and the consumer.
    ///
    /// What a stream holds is what is queued plus what the consumer took last: it is writing that to its client
    /// until it asks for more. The window bounds the sum.
    final class Handoff: Sendable {
        private struct State {
            /// What came and waits for the consumer, in one buffer: curl's callbacks (one per HTTP chunk, so one
            /// per event) append to it, and the consumer takes it whole.
            var queued: ByteBuffer?
            /// Bytes of the last hand-out, held until the consumer asks again.
            var handedOut = 0
            var waiter: CheckedContinuation<Void, any Error>?
            /// The producer was told to stop: it waits for `resume`.
            var paused = false
            /// nil while the body streams; then its end (nil error: complete).
            var end: (any Error)??
            var cancelled = false
            /// Where chunks go once the body is relayed.
            var relay: (any UpstreamBodyRelay)?
            /// Chunks wait for the relay and the curl loop knows it (`Offered.takenForRelay`).
            var relayDue = false

            var held: Int { (queued?.readableBytes ?? 0) + handedOut }
        }

        private enum Step { case chunk(ByteBuffer), end((any Error)?), wait }

        let window: Int
        private let state = Mutex(State())
        private let counters: UpstreamCounters
        /// Called (on the consumer's thread) when a paused transfer may go on, and when the consumer leaves
        /// before the end.
        private let resume: @Sendable () -> Void
        private let cancel: @Sendable () -> Void

        init(window: Int, counters: UpstreamCounters, resume: @escaping @Sendable () -> Void,
             cancel: @escaping @Sendable () -> Void) {
            self.window = Swift.max(1, window)
            self.counters = counters
            self.resume = resume
            self.cancel = cancel
        }

        /// What `offered` did with a chunk.
        enum Offered {
            case taken
            /// Taken, the first since the relay's last `flushRelay()`: the curl loop flushes this body after its pass.
            case takenForRelay
            /// Nothing taken: the window is full, the caller pauses the transfer (curl offers the same bytes again
            /// once resumed).
            case refused
        }

        /// A chunk from the upstream (see `Offered`): `bytes`, or only its ranges `parts` (the data among a chunked
        /// body's framing), `count` bytes in all (all of `bytes` when nil). Chunks of a relayed body wait here for the end of the curl
        /// loop's pass, so that what one pass reads for a stream crosses to the relay's connection at once.
        func offered(_ bytes: UnsafeRawBufferPointer, parts: [Range<Int>]? = nil, count: Int? = nil) -> Offered {
            let count = count ?? bytes.count
            let (offered, waiter): (Offered, CheckedContinuation<Void, any Error>?) = state.withLock { state in
                if state.cancelled || state.end != nil { return (.taken, nil) }  // nobody will read it
                if state.held >= window {
                    state.paused = true
                    return (.refused, nil)
                }
                counters.buffered(count)
                if state.queued == nil {
                    // Room for a few more events: what comes before the consumer runs joins this one.
                    state.queued = ByteBufferAllocator().buffer(capacity: Swift.max(count, 1024))
                }
                if let parts {
                    for part in parts { state.queued!.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[part])) }
                } else {
                    state.queued!.writeBytes(bytes)
                }
                if state.relay != nil {
                    defer { state.relayDue = true }
                    return (state.relayDue ? .taken : .takenForRelay, nil)
                }
                defer { state.waiter = nil }
                return (.taken, state.waiter)
            }
            waiter?.resume()
            return offered
        }

        /// Hands what is queued to the relay (on the curl thread); false when the relay refused it, which then
        /// stays queued until the relay resumes the body (`resumeRelay`). True (the window is empty: a paused
        /// transfer may go on) when it took it, or when the body is not relayed.
        func flushRelay() -> Bool {
            state.withLock { state in
                state.relayDue = false
                if let relay = state.relay, let queued = state.queued {
                    // Under the lock: chunks reach the relay in order even while `relay(to:)` hands over what
                    // was queued.
                    guard relay.receive(queued, force: false) else { return false }
                    state.queued = nil
                    state.paused = false
                }
                return true
            }
        }

        /// The body ended: `nil` when complete, else why it broke. What is queued is still delivered first.
        func finish(_ error: (any Error)?) {
            let (waiter, relay): (CheckedContinuation<Void, any Error>?, (any UpstreamBodyRelay)?) = state.withLock { state in
                guard state.end == nil else { return (nil, nil) }
                state.end = .some(error)
                if let relay = state.relay, let queued = state.queued.take() {
                    _ = relay.receive(queued, force: true)
                }
                defer { state.waiter = nil }
                // Let go of the relay: it holds its connection, whose outbox holds this body (a cycle that would
                // keep every connection that ever relayed a stream).
                return (state.waiter, state.relay.take())
            }
            // Woken, the consumer takes what is queued first, then the end.
            waiter?.resume()
            relay?.end(error)
        }

        /// Hands what is queued to `relay`, then every later chunk and the end (see `UpstreamBody.relay(to:)`).
        func relay(to relay: any UpstreamBodyRelay) {
            let (ended, resumeProducer): ((any Error)??, Bool) = state.withLock { state in
                if let queued = state.queued.take() {
                    _ = relay.receive(queued, force: true)
                }
                // Kept only until the end (see `finish`).
                if state.end == nil { state.relay = relay }
                // What was queued is the relay's now: the producer paused on a full window may go on.
                defer { state.paused = false }
                return (state.end, state.paused)
            }
            if resumeProducer { resume() }
            if let ended { relay.end(ended) }
        }

        /// The relay can take bytes again: the curl loop flushes what waits and resumes a paused transfer.
        func resumeRelay() {
            state.withLock { $0.paused = false }
            resume()
        }

        /// Bytes the relay took have left.
        func relayed(_ count: Int) {
            counters.buffered(-count)
        }

        fileprivate func next() async throws -> ByteBuffer? {
            var resumeProducer = false
            let step: Step = state.withLock { state in
                // The consumer is done with what it took last.
                counters.buffered(-state.handedOut)
                state.handedOut = 0
                let step = look(&state)
                if state.paused, state.held < window / 2 + 1 {
                    state.paused = false
                    resumeProducer = true
                }
                return step
            }
            if resumeProducer { resume() }
            if let taken = try Self.taken(step) { return taken }
            while true {
                let step: Step = try await withTaskCancellationHandler {
                    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                        // Something may have arrived (or ended) between the first look and now.
                        let arrived = state.withLock { state in
                            let arrived = Task.isCancelled || state.queued != nil || state.end != nil || state.cancelled
                            if !arrived { state.waiter = continuation }
                            return arrived
                        }
                        if arrived { continuation.resume() }
                    }
                    // Taken now, not when woken: what came meanwhile goes along.
                    return state.withLock { state in
                        Task.isCancelled && state.queued == nil ? .end(CancellationError()) : look(&state)
                    }
                } onCancel: {
                    let waiter = state.withLock { state in
                        state.cancelled = true
                        defer { state.waiter = nil }
                        return state.waiter
                    }
                    waiter?.resume(throwing: CancellationError())
                    cancel()
                }
                if let taken = try Self.taken(step) { return taken }
            }
        }

        /// What `next` returns for a step: the chunk, or nil at the end (throwing a broken end); for `wait`, nothing.
        private static func taken(_ step: Step) throws -> ByteBuffer?? {
            switch step {
            case .chunk(let chunk): return .some(chunk)
            case .end(let error):
                if let error { throw error }
                return .some(nil)
            case .wait: return nil
            }
        }

        /// Everything queued, as one buffer; else the end, or nothing yet.
        private func look(_ state: inout State) -> Step {
            guard let chunk = state.queued else {
                if let end = state.end { return .end(end) }
                return state.cancelled ? .end(CancellationError()) : .wait
            }
            state.queued = nil
            state.handedOut = chunk.readableBytes
            return .chunk(chunk)
        }

        /// Every copy of the body is gone: a transfer still running is cancelled.
        fileprivate func consumerLeft() {
            let unfinished = state.withLock { state in
                let unfinished = state.end == nil && !state.cancelled
                state.cancelled = true
                counters.buffered(-state.held)
                state.queued = nil
                state.handedOut = 0
                return unfinished
            }
            if unfinished { cancel() }
        }
    }
}

/// Takes an upstream body's chunks on the curl thread (`UpstreamBody.relay(to:)`), what curl read for it in one
/// pass of its loop at a time. Both calls come from the curl thread (but the first hand-over's, from the thread
/// that relays the body), one at a time.
public protocol UpstreamBodyRelay: AnyObject, Sendable {
    /// Chunks of the body. Returns false to leave them (only when `force` is false): they wait, the transfer
    /// pauses once the body's window is full, and they are offered again after the relay's
    /// `RelayControl.resume()`.
    func receive(_ chunk: ByteBuffer, force: Bool) -> Bool
    /// The body ended: `nil` when complete, else why it broke (or was cancelled).
    func end(_ error: (any Error)?)
}
