import DequeModule

/// A map that holds at most `capacity` keys and forgets the least recently used first: what fleet remembers
/// of each replica's prompt cache, and which replica each session is on. Every operation is O(1) amortized.
public struct RecentlyUsed<Key: Hashable, Value> {
    public let capacity: Int
    private var entries: [Key: (value: Value, stamp: UInt64)] = [:]
    /// Keys in the order they were last used, oldest first; an entry whose stamp is not the key's current one is
    /// stale (the key was used again since) and skipped.
    private var order = Deque<(key: Key, stamp: UInt64)>()
    private var clock: UInt64 = 0

    public init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    public var count: Int { entries.count }

    /// The value, without counting as a use.
    public subscript(key: Key) -> Value? { entries[key]?.value }

    public func contains(_ key: Key) -> Bool { entries[key] != nil }

    /// Stores `value` as the most recently used, forgetting the oldest keys beyond `capacity`.
    public mutating func set(_ key: Key, _ value: Value) {
        guard capacity > 0 else { return }
        clock += 1
        entries[key] = (value, clock)
        order.append((key, clock))
        while entries.count > capacity, let oldest = order.popFirst() {
            if entries[oldest.key]?.stamp == oldest.stamp { entries[oldest.key] = nil }
        }
        // Keys used again and again leave stale entries behind: drop them once they outnumber the live ones.
        if order.count > 2 * capacity + 64 {
            order = Deque(order.filter { entries[$0.key]?.stamp == $0.stamp })
        }
    }

    public mutating func remove(_ key: Key) {
        entries[key] = nil
    }

    public mutating func removeAll(where shouldRemove: (Key, Value) -> Bool) {
        for (key, entry) in entries where shouldRemove(key, entry.value) { entries[key] = nil }
    }
}

/// What one replica has served recently, as prompt block fingerprints: what its slots and llama-server's
/// host-memory prompt cache most likely hold.
public struct PrefixRecord: Sendable {
    private var blocks: RecentlyUsed<UInt64, Void>

    public init(capacity: Int) {
        blocks = RecentlyUsed(capacity: capacity)
    }

    public var count: Int { blocks.count }

    /// Remembers a request's blocks. The last block is stored first, so the first blocks are the most recently
    /// used and a shared beginning (a system prompt) outlives the ends of old conversations.
    public mutating func remember(_ fingerprints: [UInt64]) {
        for fingerprint in fingerprints.reversed() { blocks.set(fingerprint, ()) }
    }

    /// How many of the request's first blocks this replica served before: the longest chain it knows (the
    /// fingerprints are chained, so knowing block k means the k blocks before it matched too).
    public func matched(_ fingerprints: [UInt64]) -> Int {
        var index = fingerprints.count
        while index > 0 {
            if blocks.contains(fingerprints[index - 1]) { return index }
            index -= 1
        }
        return 0
    }
}

/// What a request tells the pool about where it would be served best.
public struct RoutingHint: Sendable, Equatable {
    /// The prompt's block fingerprints (`PromptFingerprint`); empty when the policy does not use them.
    public var fingerprints: [UInt64]
    /// The client's session key (`X-Session-Id`, `prompt_cache_key` or `user`), if it sent one.
    public var session: String?

    public init(fingerprints: [UInt64] = [], session: String? = nil) {
        self.fingerprints = fingerprints
        self.session = session
    }

    public static let none = RoutingHint()
}

extension RecentlyUsed: Sendable where Key: Sendable, Value: Sendable {}
