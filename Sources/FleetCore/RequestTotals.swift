/// Every request a model's pool answered, whole (`served`) or not (`failed`: an instance's error or a cut answer,
/// or a refusal by the gateway: queue full, queue timeout, every attempt failed). A client that left counts
/// as neither. What `fleet restart` and `fleet swap` report, from counts rather than hope.
public struct RequestTotals: Sendable, Equatable, Codable {
    public var served = 0
    public var failed = 0

    public init(served: Int = 0, failed: Int = 0) {
        self.served = served
        self.failed = failed
    }

    public static func - (after: RequestTotals, before: RequestTotals) -> RequestTotals {
        RequestTotals(served: after.served - before.served, failed: after.failed - before.failed)
    }
}
