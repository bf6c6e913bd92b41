public import Foundation
import Synchronization
public import FleetConfig
public import FleetCore

/// One model's members, their in-flight counts, and the queue of requests waiting for a slot. The actor is
/// the only owner of those counts: taken at dispatch, given back at the end of the stream or on cancellation.
public actor ModelPool {
    public nonisolated let model: String
    public private(set) var policy: SchedulingPolicy {
        didSet { prefixAware.store(policy == .prefixAware, ordering: .relaxed) }
    }
    private nonisolated let prefixAware: Atomic<Bool>
    /// Whether the policy routes by prompt prefix, readable without waiting for the actor: the gateway computes
    /// a request's fingerprints only then.
    public nonisolated var usesPrefixes: Bool { prefixAware.load(ordering: .relaxed) }
    public private(set) var queue: QueueSettings
    public private(set) var prefixRouting: PrefixRoutingSettings

    var members: [PoolMember] = []
    private var stats: [String: MemberStats] = [:]
    var cursor = 0
    /// What each member served recently (`prefixAware`), by member id; forgotten when it leaves rotation.
    var records: [String: PrefixRecord] = [:]
    /// Which member each session is on (every policy but `roundRobin`).
    var sessions: RecentlyUsed<String, String>
    var waiters: [Waiter] = []
    /// The last time a request finished (or a member became ready): what `idleTimeout` measures from, and what
    /// eviction orders by. Nothing in flight or queued is a precondition of both, so arrivals need not count.
    private var lastActivity = ContinuousClock.now
    private var nextWaiter: UInt64 = 0

    struct Waiter {
        var id: UInt64
        var excluding: Set<String>
        var hint: RoutingHint
        var enqueued: ContinuousClock.Instant
        /// The full member it waits for (its owner), and until when that is worth it.
        var waitingFor: String?
        var wakeAt: ContinuousClock.Instant?
        var continuation: CheckedContinuation<Lease, any Error>
        var timeout: Task<Void, Never>
    }

    public private(set) var totals = RequestTotals()
    /// llama-server's prompt-cache figures over every answer of this model.
    public private(set) var promptCache = PromptCacheCounts()
    /// What evaluating a prompt token costs on this model's instances, in milliseconds (a moving average of
    /// llama-server's `prompt_ms / prompt_n`): what `prefixAware` weighs a wait for a busy owner against.
    public private(set) var promptCost: Double?

    /// The gateway refused a request for this model (it never reached an instance, or every attempt failed).
    public func recordRefusal() {
        totals.failed += 1
    }

    /// Counters per member, shown in status.
    public struct MemberStats: Sendable, Equatable {
        public var served = 0
        public var errors = 0
        public var lastLatency: Duration?
        public var lastFirstByte: Duration?
        /// Tokens generated over every answer that reported them.
        public var tokens = 0
        /// The last answer's generated tokens per second of its whole duration.
        public var lastTokensPerSecond: Double?
        /// llama-server's prompt-cache figures over its answers.
        public var promptCache = PromptCacheCounts()
    }

    public init(model: String, policy: SchedulingPolicy, queue: QueueSettings,
                prefixRouting: PrefixRoutingSettings = .init()) {
        self.model = model
        self.policy = policy
        self.prefixAware = Atomic(policy == .prefixAware)
        self.queue = queue
        self.prefixRouting = prefixRouting
        self.sessions = RecentlyUsed(capacity: prefixRouting.rememberSessions)
    }

    /// How long since a request finished (or a member became ready), when none is in flight or
    /// waiting and some member is ready; nil while busy or loading.
    public func idleFor() -> Duration? {
        guard waiters.isEmpty, members.contains(where: \.ready), members.allSatisfy({ $0.inFlight == 0 }) else { return nil }
        return .now - lastActivity
    }

    /// Whether requests are in flight or queued, and when one last finished: what `memoryBudget`
    /// eviction goes by.
    public func usage() -> PoolUsage {
        PoolUsage(busy: !waiters.isEmpty || members.contains { $0.inFlight > 0 }, lastUsed: lastActivity)
    }

    /// A reload changed how this model schedules or queues; requests already waiting keep waiting.
    public func reconfigure(policy: SchedulingPolicy, queue: QueueSettings, prefixRouting: PrefixRoutingSettings? = nil) {
        self.policy = policy
        self.queue = queue
        if let prefixRouting, prefixRouting != self.prefixRouting {
            self.prefixRouting = prefixRouting
            // New bounds: start over rather than carry records sized for the old ones.
            records.removeAll()
            sessions = RecentlyUsed(capacity: prefixRouting.rememberSessions)
        }
    }

    /// Changes the policy only (`POST /control/policy`); returns the one it replaces.
    public func setPolicy(_ policy: SchedulingPolicy) -> SchedulingPolicy {
        let previous = self.policy
        self.policy = policy
        return previous
    }

    // MARK: - Dispatch

    /// A member with a free slot, now or once one frees up (FIFO, woken by releases, not by polling).
    /// - Throws: `PoolError.queueFull` when the queue is full, `PoolError.queueTimeout` after `queue.timeout`,
    ///   `PoolError.exhausted` when `excluding` names every member, `CancellationError` when the caller is
    ///   cancelled while waiting.
    public func acquire(excluding: Set<String> = [], hint: RoutingHint = .none) async throws -> Lease {
        if closed { throw PoolError.closed }
        let arrived = ContinuousClock.now
        var wait: (owner: String, until: ContinuousClock.Instant)?
        if waiters.isEmpty {
            let taken = take(excluding: excluding, hint: hint, enqueued: arrived, waiter: nil)
            if let lease = taken.lease { return lease }
            wait = taken.wait
        }
        if !excluding.isEmpty && members.allSatisfy({ excluding.contains($0.id) }) { throw PoolError.exhausted }
        guard waiters.count < queue.maxSize else { throw PoolError.queueFull(maxSize: queue.maxSize) }
        nextWaiter += 1
        let id = nextWaiter
        let timeout = queue.timeout
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let timer = Task { [weak self] in
                    try? await Task.sleep(for: timeout)
                    await self?.expire(id, with: PoolError.queueTimeout(timeout))
                }
                waiters.append(Waiter(id: id, excluding: excluding, hint: hint, enqueued: arrived, waitingFor: wait?.owner,
                                      wakeAt: wait?.until, continuation: continuation, timeout: timer))
                if let wait { wake(at: wait.until) }
                // A release may have happened while this request was arriving.
                dispatchWaiters()
            }
        } onCancel: {
            Task { await self.expire(id, with: CancellationError()) }
        }
    }

    /// A lease now, or none, and then whether the request waits for its full owner (and until when).
    private func take(excluding: Set<String>, hint: RoutingHint, enqueued: ContinuousClock.Instant,
                      waiter: UInt64?) -> (lease: Lease?, wait: (owner: String, until: ContinuousClock.Instant)?) {
        let decision = affinity(for: hint, excluding: excluding, enqueued: enqueued, waiter: waiter)
        guard let index = Scheduler.pick(members, policy: policy, cursor: &cursor, excluding: excluding,
                                         affinity: decision?.affinity) else { return (nil, decision?.wait) }
        return (lease(index, hint: hint), nil)
    }

    /// Looks at the queue again at `deadline`: a request that waited for its owner that long takes any slot.
    func wake(at deadline: ContinuousClock.Instant) {
        Task { [weak self] in
            try? await Task.sleep(until: deadline, clock: .continuous)
            await self?.dispatchWaiters()
        }
    }

    func lease(_ index: Int, hint: RoutingHint) -> Lease {
        members[index].inFlight += 1
        remember(hint, on: members[index].id)
        return Lease(pool: self, member: members[index])
    }


    private func expire(_ id: UInt64, with error: any Error) {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return }
        let waiter = waiters.remove(at: index)
        waiter.timeout.cancel()
        waiter.continuation.resume(throwing: error)
        wakeQuietWaitersIfQuiet()
    }

    // MARK: - Drains (ModelPool+Drain)

    var closed = false
    var quietWaiters: [CheckedContinuation<Void, Never>] = []

    /// Hands freed slots to waiting requests, oldest first. A waiter that cannot use any free member (it
    /// excludes them all) does not block the ones behind it. Under an affinity policy, waiters whose own member
    /// (session or prefix) has a free slot go first; then the oldest take what is free, so no slot idles while
    /// requests wait.
    func dispatchWaiters() {
        if policy != .roundRobin { dispatchWaitersToTheirMembers() }
        var index = 0
        while index < waiters.count {
            let taken = take(excluding: waiters[index].excluding, hint: waiters[index].hint,
                             enqueued: waiters[index].enqueued, waiter: waiters[index].id)
            waiters[index].waitingFor = taken.wait?.owner
            if let until = taken.wait?.until, until != waiters[index].wakeAt {
                waiters[index].wakeAt = until
                wake(at: until)
            }
            if let lease = taken.lease {
                let waiter = waiters.remove(at: index)
                waiter.timeout.cancel()
                waiter.continuation.resume(returning: lease)
            } else if members.contains(where: \.hasFreeSlot) {
                index += 1
            } else {
                return
            }
        }
    }

    func release(memberID: String, outcome: Lease.Outcome, latency: Duration) {
        lastActivity = .now
        if let index = members.firstIndex(where: { $0.id == memberID }) {
            members[index].inFlight = max(0, members[index].inFlight - 1)
            if members[index].inFlight == 0 {
                wakeIdleWaiters(memberID)
                if retiring.remove(memberID) != nil { members.remove(at: index) }
            }
        }
        var counters = stats[memberID] ?? MemberStats()
        switch outcome {
        case .success(let firstByte, let tokens, let cache, let promptMsPerToken):
            totals.served += 1
            if let promptMsPerToken {
                promptCost = promptCost.map { $0 * 0.8 + promptMsPerToken * 0.2 } ?? promptMsPerToken
            }
            if let cache {
                promptCache += cache
                counters.promptCache += cache
            }
            counters.served += 1
            counters.lastLatency = latency
            counters.lastFirstByte = firstByte
            if let tokens, tokens > 0 {
                counters.tokens += tokens
                counters.lastTokensPerSecond = latency > .zero ? Double(tokens) / latency.seconds : nil
            }
        case .failure:
            totals.failed += 1
            counters.errors += 1
        case .cancelled:
            break
        }
        stats[memberID] = counters
        dispatchWaiters()
        wakeQuietWaitersIfQuiet()
    }

    // MARK: - Membership

    /// Adds or updates a member: in rotation when `ready`. A member leaving rotation keeps its in-flight
    /// requests; they finish and release as usual.
    public func setMember(_ kind: PoolMemberKind, baseURL: String, capacity: Int, ready: Bool) {
        let id = PoolMember(kind: kind, baseURL: baseURL, capacity: capacity).id
        if let index = members.firstIndex(where: { $0.id == id }) {
            // Not ready any more, or a new process at another port: what it cached is gone.
            if members[index].baseURL != baseURL || (members[index].ready && !ready) { forget(id) }
            if members[index].baseURL != baseURL { members[index].suspended = false }
            members[index].baseURL = baseURL
            members[index].capacity = max(1, capacity)
            members[index].ready = ready
            if ready { members[index].suspended = false }
            // Idle time counts from when the model can serve, not from before it loaded.
            if ready { lastActivity = .now }
        } else {
            members.append(PoolMember(kind: kind, baseURL: baseURL, capacity: max(1, capacity), ready: ready))
            members.sort { $0.id < $1.id }
            if ready { lastActivity = .now }
        }
        dispatchWaiters()
    }

    /// Members that are gone for good: removed as soon as their last request is released.
    private var retiring: Set<String> = []
    /// Drains waiting for a member to have nothing in flight.
    var idleWaiters: [String: [CheckedContinuation<Void, Never>]] = [:]

    /// Takes a member out for good: out of rotation now, out of the pool once its in-flight requests finish.
    public func retireMember(id: String) {
        guard let index = members.firstIndex(where: { $0.id == id }) else { return }
        forget(id)
        if members[index].inFlight == 0 {
            members.remove(at: index)
        } else {
            members[index].ready = false
            retiring.insert(id)
        }
    }

    /// What the health checks say of each unmanaged endpoint, for status.
    var endpoints: [String: EndpointState] = [:]

    public struct EndpointState: Sendable, Equatable {
        public var state: InstanceState
        public var since: Date
        public var detail: String?
    }

    // MARK: - Status

    public func snapshot() -> PoolSnapshot {
        PoolSnapshot(model: model, policy: policy, queueDepth: waiters.count,
                     members: members.map { ($0, stats[$0.id] ?? MemberStats()) }, endpoints: endpoints,
                     promptCache: promptCache)
    }
}

