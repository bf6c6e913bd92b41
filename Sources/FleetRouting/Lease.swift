import Foundation
import Synchronization
public import FleetCore

/// Why the gateway could not get an instance for a request.
public enum PoolError: Error, Sendable, Equatable {
    /// The queue already holds `maxSize` waiting requests (HTTP 429).
    case queueFull(maxSize: Int)
    /// The request waited `timeout` without a free slot (HTTP 503).
    case queueTimeout(Duration)
    /// Every member was already tried for this request (failover has nowhere left to go).
    case exhausted
    /// The model was removed from the fleet (by a reload) and its drain is over.
    case closed
}

/// What the gateway holds while a request runs on a member: released exactly once, at the end of the response,
/// on failure, or (as a last resort) when the lease is dropped without a release.
public final class Lease: Sendable {
    public let memberID: String
    /// What the member is: fleet's instance or an endpoint.
    public let kind: PoolMemberKind
    public let baseURL: String
    package let started: ContinuousClock.Instant
    private let pool: ModelPool
    private let released = Atomic<Bool>(false)

    init(pool: ModelPool, member: PoolMember) {
        self.pool = pool
        self.memberID = member.id
        self.kind = member.kind
        self.baseURL = member.baseURL
        self.started = .now
    }

    /// How the request ended, for the member's counters.
    public enum Outcome: Sendable {
        /// `tokens`: what llama-server said it generated, when it said; `cache`: its prompt-cache figures;
        /// `promptMsPerToken`: what evaluating a prompt token took (`prompt_ms / prompt_n`).
        case success(firstByte: Duration?, tokens: Int? = nil, cache: PromptCacheCounts? = nil, promptMsPerToken: Double? = nil)
        case failure
        /// The client went away; neither a success nor the member's fault.
        case cancelled
    }

    public func release(_ outcome: Outcome) async {
        guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
        await pool.release(memberID: memberID, outcome: outcome, latency: .now - started)
    }

    deinit {
        // Never leak a slot: a response body that was never written still gives its slot back.
        if !released.load(ordering: .acquiring) {
            let pool = pool, id = memberID, latency = ContinuousClock.now - started
            Task { await pool.release(memberID: id, outcome: .cancelled, latency: latency) }
        }
    }
}
