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
    public func cancellingOnClose<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        guard let registry, let id else { return try await operation() }
        let task = Task { try await operation() }
        registry.onClose(id) { task.cancel() }
        defer { registry.clearOnClose(id) }
        return try await withTaskCancellationHandler {
            try await task.value
        } onCancel: {
            task.cancel()
        }
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
