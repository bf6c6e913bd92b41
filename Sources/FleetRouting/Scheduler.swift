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

/// The scheduling policies, as pure functions over a pool's members: which one takes the next request.
public enum Scheduler {
    /// The index of the member to use, or nil when none in rotation has a free slot. `cursor` is the pool's
    /// round-robin position; it advances past the chosen member.
    public static func pick(_ members: [PoolMember], policy: SchedulingPolicy, cursor: inout Int,
                            excluding: Set<String> = []) -> Int? {
        guard !members.isEmpty else { return nil }
        let count = members.count
        var chosen: Int?
        for step in 0..<count {
            let index = (cursor + step) % count
            let member = members[index]
            guard member.hasFreeSlot, !excluding.contains(member.id) else { continue }
            switch policy {
            case .roundRobin:
                chosen = index
            case .leastBusy:
                // Strictly fewer wins, so among equals the first in round-robin order stays chosen.
                if chosen == nil || member.inFlight < members[chosen!].inFlight { chosen = index }
            }
            if policy == .roundRobin { break }
        }
        if let chosen { cursor = (chosen + 1) % count }
        return chosen
    }
}
