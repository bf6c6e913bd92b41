public import FleetCore
public import FleetRouting

extension TrafficStatus {
    /// A pool member's traffic as `/status` shows it.
    public init(member: PoolMember, stats: ModelPool.MemberStats) {
        self.init(inFlight: member.inFlight, capacity: member.capacity, served: stats.served, errors: stats.errors,
                  inRotation: member.inRotation,
                  lastLatencyMs: stats.lastLatency.map { ($0.seconds * 1000 * 10).rounded() / 10 },
                  lastFirstByteMs: stats.lastFirstByte.map { ($0.seconds * 1000 * 10).rounded() / 10 },
                  tokens: stats.tokens,
                  lastTokensPerSecond: stats.lastTokensPerSecond.map { ($0 * 10).rounded() / 10 })
        promptCache = stats.promptCache.promptTokens > 0 ? stats.promptCache : nil
    }
}
