import NIOCore
import Synchronization
import FleetCore

/// The client connection a request came in on, as a route sees it: whether the client is still there, and a
/// way to stop work for it the moment it leaves.
public struct ClientConnection: Sendable {
    let registry: ConnectionRegistry?
    let id: ConnectionRegistry.ID?

    /// For code paths with no connection behind them (tests calling a route directly).
    public static let detached = ClientConnection(registry: nil, id: nil)

    init(registry: ConnectionRegistry, channel: any Channel) {
        self.registry = registry
        self.id = ObjectIdentifier(channel)
    }

    init(registry: ConnectionRegistry?, id: ConnectionRegistry.ID?) {
        self.registry = registry
        self.id = id
    }

    public var isOpen: Bool {
        guard let registry, let id else { return true }
        return registry.isOpen(id)
    }

    /// Runs `operation`, cancelled as soon as the client's connection closes (while a request waits in a queue,
    /// or for an instance's first byte, nothing is written that could fail and tell).
    ///
    /// The task cancelled is the one serving the connection (Hummingbird serves a connection's requests in one
    /// task): once its client has gone there is nothing left for it to do. No task is spawned per request.
    public func cancellingOnClose<T: Sendable>(_ operation: () async throws -> T) async throws -> T {
        guard let registry, let id else { return try await operation() }
        let serving = withUnsafeCurrentTask { task in task.map(ServingTask.init) }
        if let serving { registry.onClose(id) { serving.cancel() } }
        defer {
            serving?.disarm()
            registry.clearOnClose(id)
        }
        return try await operation()
    }

    /// The task running `cancellingOnClose`, for the registry to cancel while it is armed.
    ///
    /// `@unchecked Sendable` because `UnsafeCurrentTask` is not: its `cancel()` is safe from any thread, but the
    /// task must still exist. It does: `cancel()` and `disarm()` take the same lock, and `cancellingOnClose`
    /// disarms before it returns, while its task is still running, so a cancel either finished before or finds
    /// nothing. (The lock is the token's own: cancelling runs the task's cancellation handlers, which may make
    /// the connection report its close again, and the registry's lock must be free for that.)
    private final class ServingTask: @unchecked Sendable {
        private let task: UnsafeCurrentTask
        private let armed = Mutex(true)
        init(_ task: UnsafeCurrentTask) { self.task = task }
        func cancel() { armed.withLock { armed in if armed { task.cancel() } } }
        func disarm() { armed.withLock { $0 = false } }
    }

    /// Runs `action` once if the client leaves before `clearOnClose()`; at once if it has already left.
    public func onClose(_ action: @escaping @Sendable () -> Void) {
        guard let registry, let id else { return }
        registry.onClose(id, action)
    }

    public func clearOnClose() {
        guard let registry, let id else { return }
        registry.clearOnClose(id)
    }
}
