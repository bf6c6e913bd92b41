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
        withUnsafeCurrentTask { task in
            guard let task else { return }
            let serving = ServingTask(task: task)
            registry.onClose(id) { serving.cancel() }
        }
        defer { registry.clearOnClose(id) }
        return try await operation()
    }

    /// The task running `cancellingOnClose`, for the registry to cancel.
    ///
    /// `@unchecked Sendable` because `UnsafeCurrentTask` is not: its `cancel()` is safe from any thread, but the
    /// task must still exist. It does: the registry calls the action only while it is set (`closed` runs it
    /// under the registry's lock), and `cancellingOnClose` clears it under that lock before returning, while
    /// its task is still running.
    private struct ServingTask: @unchecked Sendable {
        let task: UnsafeCurrentTask
        func cancel() { task.cancel() }
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
