public import FleetCore
public import FleetConfig
/// What a pool member is.
public enum PoolMemberKind: Sendable, Equatable {
    /// One generation of one of fleet's replicas.
    case instance(InstanceID)
    /// A llama-server (or another fleet) that fleet does not run, by its URL.
    case endpoint(url: String)

    /// How status and metrics name it: the replica (`gemma/0`, the same across hot swaps) or the URL.
    public var label: String {
        switch self {
        case .instance(let id): id.description
        case .endpoint(let url): url
        }
    }

    /// Whether fleet runs it.
    public var isManaged: Bool {
        if case .instance = self { return true }
        return false
    }
}

/// One upstream a pool may send requests to: a managed instance or an unmanaged endpoint.
public struct PoolMember: Sendable, Equatable {
    /// `gemma/0#1` for an instance (the generation included), the URL for an endpoint.
    public var id: String
    public var kind: PoolMemberKind
    public var baseURL: String
    /// Requests it serves at once (its slots).
    public var capacity: Int
    public var inFlight = 0
    /// The supervisor (or the endpoint's health check) says it is ready.
    public var ready = false
    /// Taken out of rotation by a failover until a health check passes.
    public var suspended = false

    public init(kind: PoolMemberKind, baseURL: String, capacity: Int, ready: Bool = false) {
        switch kind {
        case .instance(let id): self.id = id.memberID
        case .endpoint(let url): self.id = url
        }
        self.kind = kind
        self.baseURL = baseURL
        self.capacity = capacity
        self.ready = ready
    }

    public var inRotation: Bool { ready && !suspended }
    var hasFreeSlot: Bool { inRotation && inFlight < capacity }
}

/// Where a request would be served best: the pool's knowledge of it, per member (same order as the members).
public struct Affinity: Sendable, Equatable {
    /// Prompt blocks each member served before (`PrefixRecord.matched`); empty when unknown.
    public var matched: [Int]
    /// The member the request's session is on.
    public var sticky: Int?
    /// How many more requests in flight than the least busy member the best-matching one may have (to take the
    /// request, or to be waited for when full).
    public var maxImbalance: Int
    /// Whether the request may wait for its owner when the owner is full: the pool's call (the wait would cost
    /// less than evaluating the prefix elsewhere, and the owner serves it in its next round).
    public var mayWait: Bool

    public init(matched: [Int] = [], sticky: Int? = nil, maxImbalance: Int = 2, mayWait: Bool = false) {
        self.matched = matched
        self.sticky = sticky
        self.maxImbalance = maxImbalance
        self.mayWait = mayWait
    }
}

/// The scheduling policies, as pure functions over a pool's members: which one takes the next request.
public enum Scheduler {
    /// The index of the member to use, or nil when the request is to wait in the queue: no member in rotation
    /// has a free slot, or the member that holds the request's prefix is full and worth waiting for. `cursor` is
    /// the pool's round-robin position; it advances past the chosen member.
    ///
    /// Under every policy but `roundRobin`, a request whose session is on a member with a free slot goes there.
    /// Under `prefixAware` the member that served the longest prefix of the prompt (ties: the least busy, then
    /// round-robin order) is the request's owner. The owner takes it when it has a free slot and at most
    /// `maxImbalance` requests in flight beyond the least busy member. A full owner is waited for when the pool
    /// says the wait is worth it (`mayWait`) and the owner has at most `maxImbalance` requests beyond the least busy
    /// member with a free slot. Otherwise, and with no match, the least busy member takes it.
    public static func pick(_ members: [PoolMember], policy: SchedulingPolicy, cursor: inout Int,
                            excluding: Set<String> = [], affinity: Affinity? = nil) -> Int? {
        guard !members.isEmpty else { return nil }
        let count = members.count
        func usable(_ index: Int) -> Bool { members[index].hasFreeSlot && !excluding.contains(members[index].id) }
        var chosen: Int?
        for step in 0..<count {
            let index = (cursor + step) % count
            guard usable(index) else { continue }
            if policy == .roundRobin {
                chosen = index
                break
            }
            // Strictly fewer wins, so among equals the first in round-robin order stays chosen.
            if chosen == nil || members[index].inFlight < members[chosen!].inFlight { chosen = index }
        }
        if policy != .roundRobin, let affinity {
            if let sticky = affinity.sticky, sticky < count, usable(sticky) {
                chosen = sticky
            } else if policy == .prefixAware, let owner = owner(members, affinity: affinity, cursor: cursor, excluding: excluding) {
                let leastBusy = chosen.map { members[$0].inFlight } ?? Int.max
                let beyond = members[owner].inFlight - min(leastBusy, members[owner].inFlight)
                if usable(owner) {
                    if beyond <= affinity.maxImbalance { chosen = owner }
                } else if affinity.mayWait && beyond <= affinity.maxImbalance {
                    chosen = nil  // full, and worth waiting for
                }
            }
        }
        if let chosen { cursor = (chosen + 1) % count }
        return chosen
    }

    /// The member in rotation (not excluded) holding the longest prefix of the request; ties: the least busy,
    /// then round-robin order. Nil without a match.
    static func owner(_ members: [PoolMember], affinity: Affinity, cursor: Int, excluding: Set<String>) -> Int? {
        guard affinity.matched.count == members.count else { return nil }
        var best: Int?
        for step in 0..<members.count {
            let index = (cursor + step) % members.count
            guard members[index].inRotation, !excluding.contains(members[index].id), affinity.matched[index] > 0 else { continue }
            if best == nil || affinity.matched[index] > affinity.matched[best!]
                || (affinity.matched[index] == affinity.matched[best!] && members[index].inFlight < members[best!].inFlight) {
                best = index
            }
        }
        return best
    }
}
