/// A pool's activity as eviction sees it.
public struct PoolUsage: Sendable, Equatable {
    public var busy: Bool
    public var lastUsed: ContinuousClock.Instant

    public init(busy: Bool, lastUsed: ContinuousClock.Instant) {
        self.busy = busy
        self.lastUsed = lastUsed
    }
}
