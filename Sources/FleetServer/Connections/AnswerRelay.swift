import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization
import FleetUpstream

/// A response body writer that can take a stream's chunks straight from the curl thread into its connection,
/// without the request's task between the two (the gateway's own connections: `GatewayChannelHandler`).
protocol RelayingBodyWriter: ResponseBodyWriter {
    /// Relays `body` until its end, each chunk through `tracker`; the task waits meanwhile. `cancel` stops the
    /// upstream transfer (when the client is gone, or the task is cancelled).
    mutating func relay(_ body: UpstreamBody, tracker: AnswerTracker, cancel: @escaping @Sendable () -> Void) async
        -> AnswerRelay.Outcome
}

/// A stream relayed from the curl thread into a connection's `AnswerOutbox`: what curl read for it in a pass of its
/// loop is taken (or refused while the outbox is full: it waits in the body's window, and the transfer pauses once
/// that is full) on the curl thread, passes the answer's `AnswerTracker` there, and goes to the loop; the request's
/// task only waits for the end. One crossing per pass (curl thread → loop) instead of two (curl thread → task →
/// loop).
final class AnswerRelay: UpstreamBodyRelay {
    struct Outcome: Sendable {
        var tracker: AnswerTracker
        /// The connection had closed when a chunk came.
        var clientGone: Bool
        /// The body's end: nil when complete.
        var end: (any Error)?
        /// The answer's head when no chunk took it along.
        var head: HTTPResponse?
    }

    private struct State {
        var tracker: AnswerTracker
        var head: HTTPResponse?
        var clientGone = false
        var end: (any Error)??
        /// Resumed once: by `end` (which takes it), or at once by `outcome` when the end came first. Unsafe: a
        /// checked continuation allocates its guard for every stream.
        var waiter: UnsafeContinuation<Void, Never>?
    }

    private let state: Mutex<State>
    private let outbox: AnswerOutbox
    private let schedule: @Sendable () -> Void
    private let cancel: @Sendable () -> Void

    /// - Parameter schedule: asks the loop to take what is in the outbox.
    init(outbox: AnswerOutbox, head: HTTPResponse?, tracker: AnswerTracker, schedule: @escaping @Sendable () -> Void,
         cancel: @escaping @Sendable () -> Void) {
        self.state = Mutex(State(tracker: tracker, head: head))
        self.outbox = outbox
        self.schedule = schedule
        self.cancel = cancel
    }

    func receive(_ chunk: ByteBuffer, force: Bool) -> Bool {
        switch outbox.admit(force: force) {
        case .full:
            return false
        case .closed:
            // The client left: nobody will read the rest, and llama-server should stop writing it.
            let first = state.withLock { state in
                defer { state.clientGone = true }
                return !state.clientGone
            }
            _ = outbox.put(nil, nil, end: nil, relayed: chunk.readableBytes)  // closed: released at once
            if first { cancel() }
            return true
        case .open:
            let (head, out): (HTTPResponse?, ByteBuffer?) = state.withLock { state in
                let out = state.tracker.pass(chunk, at: .now)
                return (out == nil ? nil : state.head.take(), out)
            }
            if outbox.put(head, out, end: nil, relayed: chunk.readableBytes) { schedule() }
            return true
        }
    }

    func end(_ error: (any Error)?) {
        let waiter = state.withLock { state in
            state.end = .some(error)
            return state.waiter.take()
        }
        waiter?.resume()
    }

    /// Waits for the body's end.
    func outcome() async -> Outcome {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            let ended = state.withLock { state in
                if state.end == nil { state.waiter = continuation }
                return state.end != nil
            }
            if ended { continuation.resume() }
        }
        return state.withLock { state in
            Outcome(tracker: state.tracker, clientGone: state.clientGone, end: state.end ?? nil, head: state.head.take())
        }
    }
}
