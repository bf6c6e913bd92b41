import Synchronization
public import FleetConfig

/// The keys in force, replaced by a reload (a key revoked in fleet.json stops working at once). One owner:
/// this box; readers take a copy.
public final class APIKeys: Sendable {
    private let current: Mutex<KeySet>

    public init(_ keys: KeySet) {
        current = Mutex(keys)
    }

    public var keys: KeySet { current.withLock { $0 } }

    public func replace(with keys: KeySet) {
        current.withLock { $0 = keys }
    }
}
