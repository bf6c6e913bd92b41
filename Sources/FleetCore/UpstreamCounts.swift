/// What the controller's upstream transfers hold right now (`UpstreamCounters` in FleetUpstream keeps them).
public struct UpstreamCounts: Sendable, Codable, Equatable {
    /// Transfers in flight (completions, probes).
    public var transfers: Int
    /// Transfers paused because their client does not read (each holds at most the window).
    public var paused: Int
    /// Bytes received from upstreams that are not yet taken for their clients.
    public var bufferedBytes: Int

    public init(transfers: Int = 0, paused: Int = 0, bufferedBytes: Int = 0) {
        self.transfers = transfers
        self.paused = paused
        self.bufferedBytes = bufferedBytes
    }
}
