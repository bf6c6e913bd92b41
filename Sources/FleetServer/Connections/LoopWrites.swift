import NIOCore
import Synchronization

/// The connections of one event loop whose outbox has something for the loop to write, gathered from any thread
/// and written by the loop in one task: a pass of the curl loop that relays bytes to several of a loop's streams
/// costs that loop one task (and at most one wake-up), not one per stream.
///
/// Order is kept: a connection's parts wait in its `AnswerOutbox` in the order they were put, and whatever the
/// caller asks of the loop after `schedule` returns (`EventLoop.execute`) runs after the task that writes them,
/// since that task was queued no later than `schedule` returned.
final class LoopWrites: Sendable {
    private struct Pending {
        var handlers: [NIOLoopBound<GatewayChannelHandler>] = []
        /// A task that takes `handlers` is queued on the loop and has not taken them yet.
        var queued = false
    }

    private let loop: any EventLoop
    private let pending = Mutex(Pending())

    init(loop: any EventLoop) {
        self.loop = loop
    }

    /// Asks the loop to write what `handler`'s outbox holds.
    func schedule(_ handler: NIOLoopBound<GatewayChannelHandler>) {
        let queue = pending.withLock { pending in
            pending.handlers.append(handler)
            defer { pending.queued = true }
            return !pending.queued
        }
        if queue { loop.execute { self.write() } }
    }

    private func write() {
        let handlers = pending.withLock { pending in
            pending.queued = false
            defer { pending.handlers = [] }
            return pending.handlers
        }
        for handler in handlers { handler.value.writeOutbox() }
    }
}

/// One `LoopWrites` for each event loop that serves the gateway's connections, made when a loop's first
/// connection comes.
final class LoopWritesByLoop: Sendable {
    private let byLoop = Mutex<[ObjectIdentifier: LoopWrites]>([:])

    func writes(for loop: any EventLoop) -> LoopWrites {
        byLoop.withLock { byLoop in
            if let writes = byLoop[ObjectIdentifier(loop)] { return writes }
            let writes = LoopWrites(loop: loop)
            byLoop[ObjectIdentifier(loop)] = writes
            return writes
        }
    }
}
