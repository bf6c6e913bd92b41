/// The curl loop's current pass as its transfers see it. Confined to the curl thread: one pass at a time, and a
/// transfer's callbacks run inside it.
///
/// - Its time, read once when the pass begins: what a transfer stamps its activity with as its bytes arrive. A
///   clock read per write callback was 2 % of the curl thread's time (docs/benchmarks.md, twelfth pass), and the
///   deadlines it serves are checked every 200 ms and measured in seconds.
/// - One list for the chunk data a callback finds in a read (`ChunkedDecoder`), emptied by each use: a list of its
///   own grew anew for every transfer (five allocations per stream).
final class CurlPass {
    private(set) var now = ContinuousClock.now
    var chunkData: [Range<Int>] = []

    /// A new pass begins: returns its time.
    func tick() -> ContinuousClock.Instant {
        now = .now
        return now
    }
}

@available(*, unavailable)
extension CurlPass: Sendable {}
