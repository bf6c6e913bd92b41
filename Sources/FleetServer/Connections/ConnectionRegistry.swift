import NIOCore
import Synchronization
public import FleetCore

/// Every open client connection of the controller's listener, in one place: it enforces
/// `gateway.maxConnections` (a new connection beyond the cap closes the connection idle the longest; one
/// serving a request is never closed for it), and it tells a request when its client has gone, so the gateway
/// stops queueing, processing or generating for nobody.
///
/// The one owner of that state; the per-connection `ConnectionGuard` (on its event loop) reports what
/// happens, routes (on any thread) ask. One short lock per change.
public final class ConnectionRegistry: Sendable {
    public typealias ID = ObjectIdentifier

    /// A class, changed in place through the dictionary: a struct this large changed through the dictionary's
    /// subscript costs an allocation per access (its `_modify` coroutine's frame), and a request makes five.
    /// Only touched under the state's lock.
    private final class Record {
        let channel: any Channel
        /// A request is being handled or answered: never closed to make room.
        var busy = false
        /// When it last finished a request or opened: eviction closes the longest idle first.
        var idleSince: ContinuousClock.Instant
        /// What to do if the client goes away now (set by the request being served).
        var onClose: (@Sendable () -> Void)?

        init(channel: any Channel, idleSince: ContinuousClock.Instant) {
            self.channel = channel
            self.idleSince = idleSince
        }
    }

    private struct State {
        var records: [ID: Record] = [:]
        var counts = ConnectionCounts()
    }

    /// The most connections open at once.
    public let maxConnections: Int
    private let state = Mutex(State())

    public init(maxConnections: Int) {
        self.maxConnections = max(1, maxConnections)
    }

    /// What the listener's connections are doing, for status and metrics.
    public var counts: ConnectionCounts {
        state.withLock { state in
            var counts = state.counts
            counts.open = state.records.count
            return counts
        }
    }

    /// A connection opened. Beyond the cap, the longest idle connections are closed (this one when every other
    /// one is busy). At the cap a whole batch (1/64 of it) goes at once, so a flood of new connections costs one
    /// sort per batch, not one per connection, and the listener keeps accepting as fast as they come.
    func opened(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        let victims: [any Channel] = state.withLock { state in
            state.records[id] = Record(channel: channel, idleSince: .now)
            state.counts.accepted += 1
            let excess = state.records.count - maxConnections
            guard excess > 0 else { return [] }
            let batch = max(excess, maxConnections / 64)
            let idle = state.records.filter { !$0.value.busy && $0.key != id }
                .sorted { $0.value.idleSince < $1.value.idleSince }
                .prefix(batch)
            var victims = idle.map(\.value.channel)
            for (key, _) in idle { state.records[key] = nil }
            if victims.count < excess {
                // Every other connection is answering a request: this one cannot be served now.
                state.records[id] = nil
                victims.append(channel)
                state.counts.refused += 1
            }
            state.counts.evicted += victims.count
            return victims
        }
        for victim in victims { victim.close(promise: nil) }
    }

    /// The guard closed a connection for a stalled head or body, or a keep-alive connection left idle.
    func timedOut(_ id: ID) {
        state.withLock { $0.counts.timedOut += 1 }
    }

    /// A request started (`busy`) or its answer ended.
    func setBusy(_ id: ID, _ busy: Bool) {
        state.withLock { state in
            guard let record = state.records[id] else { return }
            record.busy = busy
            if !busy { record.idleSince = .now }
        }
    }

    /// The connection closed (or its client closed its side): whatever its request asked to be told runs now.
    func closed(_ id: ID) {
        let action = state.withLock { $0.records.removeValue(forKey: id)?.onClose }
        action?()
    }

    /// Whether the connection is still open.
    public func isOpen(_ id: ID) -> Bool { state.withLock { $0.records[id] != nil } }

    /// Runs `action` when the connection closes, instead of whatever was set before; at once (and returns
    /// false) when it is closed already.
    @discardableResult
    func onClose(_ id: ID, _ action: @escaping @Sendable () -> Void) -> Bool {
        let open = state.withLock { state -> Bool in
            guard let record = state.records[id] else { return false }
            record.onClose = action
            return true
        }
        if !open { action() }
        return open
    }

    /// The request no longer needs to be told.
    func clearOnClose(_ id: ID) {
        state.withLock { state in state.records[id]?.onClose = nil }
    }
}
