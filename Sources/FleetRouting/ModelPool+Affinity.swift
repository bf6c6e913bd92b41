import FleetConfig

/// What the pool remembers of where requests were served (`prefixAware`'s prompt blocks per member, the
/// members sessions are on), and how a request's hint becomes the scheduler's `Affinity`.
extension ModelPool {
    /// The request's affinity to each member now (nil when the policy or the hint has none), and when its owner
    /// is full, whether waiting for it is worth it: while it has waited less than evaluating its matched prefix
    /// again would take elsewhere (`promptCost`, capped by `prefixRouting.maxWait`), and fewer requests than the
    /// owner's slots already wait for it — half of them (at least one) when another member idles (more spill).
    func affinity(for hint: RoutingHint, excluding: Set<String> = [], enqueued: ContinuousClock.Instant = .now,
                  waiter: UInt64? = nil) -> (affinity: Affinity, wait: (owner: String, until: ContinuousClock.Instant)?)? {
        guard policy != .roundRobin else { return nil }
        let sticky = hint.session.flatMap { session in sessions[session] }.flatMap { id in members.firstIndex { $0.id == id } }
        var matched: [Int] = []
        if policy == .prefixAware, !hint.fingerprints.isEmpty {
            matched = members.map { records[$0.id]?.matched(hint.fingerprints) ?? 0 }
        }
        guard sticky != nil || matched.contains(where: { $0 > 0 }) else { return nil }
        var affinity = Affinity(matched: matched, sticky: sticky, maxImbalance: prefixRouting.maxImbalance)
        guard let owner = Scheduler.owner(members, affinity: affinity, cursor: cursor, excluding: excluding),
              !members[owner].hasFreeSlot, let cost = promptCost else { return (affinity, nil) }
        let id = members[owner].id
        let recompute = Duration.milliseconds(Double(matched[owner] * PromptFingerprint.tokensPerBlock) * cost)
        let until = enqueued + min(recompute, prefixRouting.maxWait)
        let queued = waiters.reduce(0) { $0 + ($1.waitingFor == id && $1.id != waiter ? 1 : 0) }
        // Half a round of its slots (at least one request) may wait for the owner; up to a round while no other
        // member idles. Beyond, the request goes elsewhere at once, which also moves a conversation off an
        // instance that holds more of them than it can serve onto one that has nothing to do.
        let someoneIdles = members.indices.contains { $0 != owner && members[$0].hasFreeSlot && members[$0].inFlight == 0
            && !excluding.contains(members[$0].id) }
        let round = members[owner].capacity
        guard ContinuousClock.now < until, queued < (someoneIdles ? max(1, round / 2) : round) else { return (affinity, nil) }
        affinity.mayWait = true
        return (affinity, (id, until))
    }

    /// The member now holds the request's prompt (and its session).
    func remember(_ hint: RoutingHint, on memberID: String) {
        guard policy != .roundRobin else { return }
        if let session = hint.session, sessions[session] != memberID { sessions.set(session, memberID) }
        if policy == .prefixAware, !hint.fingerprints.isEmpty {
            records[memberID, default: PrefixRecord(capacity: prefixRouting.rememberBlocks)].remember(hint.fingerprints)
        }
    }

    /// The member left rotation (restarted, swapped, unhealthy, gone): its cache is not to be counted on. Its
    /// sessions move on their next request.
    func forget(_ memberID: String) {
        records[memberID] = nil
        sessions.removeAll { _, id in id == memberID }
    }

    /// Hands free slots to the waiters whose own member (their session's, or the one holding their prefix
    /// within the load guard) has one, oldest first, looking at the first 64 waiters.
    func dispatchWaitersToTheirMembers() {
        var index = 0
        var looked = 0
        while index < waiters.count, looked < 64, members.contains(where: \.hasFreeSlot) {
            looked += 1
            let waiter = waiters[index]
            guard let affinity = affinity(for: waiter.hint, excluding: waiter.excluding)?.affinity else {
                index += 1
                continue
            }
            var tentative = cursor
            guard let chosen = Scheduler.pick(members, policy: policy, cursor: &tentative, excluding: waiter.excluding,
                                              affinity: affinity),
                  chosen == affinity.sticky || (affinity.matched.indices.contains(chosen) && affinity.matched[chosen] > 0) else {
                index += 1
                continue
            }
            cursor = tentative
            waiters.remove(at: index)
            waiter.timeout.cancel()
            waiter.continuation.resume(returning: lease(chosen, hint: waiter.hint))
        }
    }
}
