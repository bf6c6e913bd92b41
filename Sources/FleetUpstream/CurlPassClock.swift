/// The time of the curl loop's current pass, read once when the pass begins: what a transfer stamps its activity
/// with as its bytes arrive. A stream's events each come in their own write callback (a 32-token answer, 34 of
/// them), and a clock read for each was 2 % of the curl thread's time (docs/benchmarks.md, twelfth pass); the
/// deadlines it serves are checked every 200 ms and measured in seconds. Confined to the curl thread.
final class CurlPassClock {
    private(set) var now = ContinuousClock.now

    /// A new pass begins: returns its time.
    func tick() -> ContinuousClock.Instant {
        now = .now
        return now
    }
}

@available(*, unavailable)
extension CurlPassClock: Sendable {}
