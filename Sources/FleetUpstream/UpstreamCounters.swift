public import FleetCore
import Synchronization

/// What the client's transfers hold right now, for status and metrics: bytes received from upstreams that
/// their consumers have not taken yet, and the transfers paused because a consumer does not read.
public final class UpstreamCounters: Sendable {
    private let bufferedBytes = Atomic<Int>(0)
    private let pausedTransfers = Atomic<Int>(0)
    private let openTransfers = Atomic<Int>(0)

    public init() {}

    public var snapshot: UpstreamCounts {
        UpstreamCounts(transfers: openTransfers.load(ordering: .relaxed),
                       paused: pausedTransfers.load(ordering: .relaxed),
                       bufferedBytes: bufferedBytes.load(ordering: .relaxed))
    }

    func buffered(_ delta: Int) { bufferedBytes.add(delta, ordering: .relaxed) }
    func paused(_ delta: Int) { pausedTransfers.add(delta, ordering: .relaxed) }
    func opened(_ delta: Int) { openTransfers.add(delta, ordering: .relaxed) }
}
