import Foundation
public import FleetConfig
public import FleetCore

/// A pool as status shows it.
public struct PoolSnapshot: Sendable {
    public var model: String
    public var policy: SchedulingPolicy
    public var queueDepth: Int
    public var members: [(member: PoolMember, stats: ModelPool.MemberStats)]
    public var endpoints: [String: ModelPool.EndpointState]
    /// llama-server's prompt-cache figures over every answer of the model.
    public var promptCache = PromptCacheCounts()

    public func member(_ id: String) -> (member: PoolMember, stats: ModelPool.MemberStats)? {
        members.first { $0.member.id == id }
    }
}
