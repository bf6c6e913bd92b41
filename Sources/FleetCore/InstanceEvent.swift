import Foundation

/// A state change of one instance, as observers (the pools, the metrics, the `fleet up` progress display) see it.
public struct InstanceEvent: Sendable {
    public var id: InstanceID
    public var previous: InstanceState
    public var state: InstanceState
    public var port: Int?
    public var pid: Int32?
    /// Why, for `unhealthy` and `failed`; what happens next, for a pending restart.
    public var detail: String?
    /// Time since the current process was spawned.
    public var sinceSpawn: Duration?
    /// For `unhealthy` and `failed`: the last lines the process wrote to standard error (why it died).
    public var output: [String] = []

    public init(id: InstanceID, previous: InstanceState, state: InstanceState, port: Int?, pid: Int32?,
                detail: String?, sinceSpawn: Duration?) {
        self.id = id
        self.previous = previous
        self.state = state
        self.port = port
        self.pid = pid
        self.detail = detail
        self.sinceSpawn = sinceSpawn
    }
}
