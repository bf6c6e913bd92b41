/// What the curl thread hands to waiting consumers in one pass of its loop (heads, chunks, ends), resumed at
/// the end of the pass: whatever else a transfer received in the same pass is merged into what its consumer
/// takes, instead of a wake-up per chunk. Confined to the curl thread.
final class Deliveries {
    private var jobs: [@Sendable () -> Void] = []

    /// Runs `job` at the end of the pass.
    func add(_ job: @escaping @Sendable () -> Void) {
        jobs.append(job)
    }

    func flush() {
        let jobs = self.jobs
        self.jobs.removeAll(keepingCapacity: true)
        for job in jobs { job() }
    }
}

@available(*, unavailable)
extension Deliveries: Sendable {}
