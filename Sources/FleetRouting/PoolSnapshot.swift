public import Foundation
import Synchronization
public import FleetCore
public import FleetConfig
public import FleetUpstream

/// A pool as status shows it.
public struct PoolSnapshot: Sendable {
    public var model: String
    public var policy: SchedulingPolicy
    public var queueDepth: Int
    public var members: [(member: PoolMember, stats: ModelPool.MemberStats)]
    public var endpoints: [String: ModelPool.EndpointState]

    public func member(_ id: String) -> (member: PoolMember, stats: ModelPool.MemberStats)? {
        members.first { $0.member.id == id }
    }
}
