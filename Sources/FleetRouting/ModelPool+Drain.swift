/// Drains: waiting until a removed model's pool has nothing queued or in flight (then refusing what is left), and
/// until one member has nothing in flight (a restart or a swap retiring it).
extension ModelPool {
    var isQuiet: Bool { waiters.isEmpty && members.allSatisfy { $0.inFlight == 0 } }

    /// Returns once nothing is in flight or queued, or after `timeout`: a removed model's drain. Its members
    /// keep serving what was queued meanwhile (no new request can reach a removed model).
    public func waitUntilQuiet(timeout: Duration) async {
        // With no member at all (an idle on-demand model) nothing queued can be served: no use waiting.
        guard !isQuiet, !members.isEmpty else { return }
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            await self?.wakeQuietWaiters()
        }
        await withCheckedContinuation { quietWaiters.append($0) }
        timer.cancel()
    }

    func wakeQuietWaitersIfQuiet() {
        if !quietWaiters.isEmpty && isQuiet { wakeQuietWaiters() }
    }

    func wakeQuietWaiters() {
        let waiting = quietWaiters
        quietWaiters.removeAll()
        waiting.forEach { $0.resume() }
    }

    /// Refuses every request still queued (`PoolError.closed`) and any later one: the end of a removed model's
    /// drain.
    public func close() {
        closed = true
        let refused = waiters
        waiters.removeAll()
        for waiter in refused {
            waiter.timeout.cancel()
            waiter.continuation.resume(throwing: PoolError.closed)
        }
    }

    /// Returns once `id` has no request in flight, or after `timeout` (a drain must end).
    public func waitUntilIdle(id: String, timeout: Duration) async {
        guard let member = members.first(where: { $0.id == id }), member.inFlight > 0 else { return }
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            await self?.wakeIdleWaiters(id)
        }
        await withCheckedContinuation { idleWaiters[id, default: []].append($0) }
        timer.cancel()
    }

    func wakeIdleWaiters(_ id: String) {
        idleWaiters.removeValue(forKey: id)?.forEach { $0.resume() }
    }
}
