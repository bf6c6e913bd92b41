import FleetTestSupport
import Foundation
import NIOCore
import Testing
@testable import FleetRouting
@testable import FleetCore
@testable import FleetConfig

@Suite("scheduling policies")
struct SchedulerTests {
    func members(_ specs: [(inFlight: Int, capacity: Int, ready: Bool)]) -> [PoolMember] {
        specs.enumerated().map { index, spec in
            var member = PoolMember(kind: .instance(InstanceID(model: "m", replica: index)), baseURL: "http://x:\(index)", capacity: spec.capacity, ready: spec.ready)
            member.inFlight = spec.inFlight
            return member
        }
    }

    @Test func roundRobinRotatesOverReadyMembers() {
        let pool = members([(0, 4, true), (0, 4, false), (0, 4, true)])
        var cursor = 0
        let picks = (0..<4).map { _ in Scheduler.pick(pool, policy: .roundRobin, cursor: &cursor) }
        #expect(picks == [0, 2, 0, 2])
    }

    @Test func roundRobinSkipsFullMembers() {
        let pool = members([(2, 2, true), (1, 2, true), (0, 2, true)])
        var cursor = 0
        #expect(Scheduler.pick(pool, policy: .roundRobin, cursor: &cursor) == 1)
        #expect(Scheduler.pick(pool, policy: .roundRobin, cursor: &cursor) == 2)
        #expect(Scheduler.pick(pool, policy: .roundRobin, cursor: &cursor) == 1)
    }

    @Test func leastBusyPicksFewestInFlightAndBreaksTiesRoundRobin() {
        var pool = members([(3, 8, true), (1, 8, true), (1, 8, true)])
        var cursor = 0
        #expect(Scheduler.pick(pool, policy: .leastBusy, cursor: &cursor) == 1)
        #expect(Scheduler.pick(pool, policy: .leastBusy, cursor: &cursor) == 2, "a tie goes to the next in rotation")
        pool[2].inFlight = 5
        #expect(Scheduler.pick(pool, policy: .leastBusy, cursor: &cursor) == 1)
    }

    @Test func nothingIsPickedWhenEveryMemberIsFullOutOfRotationOrExcluded() {
        var cursor = 0
        #expect(Scheduler.pick(members([(1, 1, true), (0, 1, false)]), policy: .roundRobin, cursor: &cursor) == nil)
        #expect(Scheduler.pick([], policy: .leastBusy, cursor: &cursor) == nil)
        var suspended = members([(0, 1, true)])
        suspended[0].suspended = true
        #expect(Scheduler.pick(suspended, policy: .roundRobin, cursor: &cursor) == nil)
        #expect(Scheduler.pick(members([(0, 1, true)]), policy: .roundRobin, cursor: &cursor, excluding: ["m/0#0"]) == nil)
    }
}

@Suite("prefix-aware scheduling and session affinity")
struct AffinitySchedulingTests {
    func members(_ inFlight: [Int], capacity: Int = 4) -> [PoolMember] {
        inFlight.enumerated().map { index, count in
            var member = PoolMember(kind: .instance(InstanceID(model: "m", replica: index)), baseURL: "http://x:\(index)",
                                    capacity: capacity, ready: true)
            member.inFlight = count
            return member
        }
    }

    @Test func theLongestMatchWins() {
        var cursor = 0
        let affinity = Affinity(matched: [2, 9, 5], maxImbalance: 2)
        #expect(Scheduler.pick(members([0, 1, 0]), policy: .prefixAware, cursor: &cursor, affinity: affinity) == 1)
    }

    @Test func noMatchGoesToTheLeastBusy() {
        var cursor = 0
        #expect(Scheduler.pick(members([2, 1, 3]), policy: .prefixAware, cursor: &cursor, affinity: nil) == 1)
        #expect(Scheduler.pick(members([2, 1, 3]), policy: .prefixAware, cursor: &cursor,
                               affinity: Affinity(matched: [0, 0, 0])) == 1)
    }

    @Test func theLoadGuardSendsTheRequestToTheLeastBusyWhenTheOwnerIsMuchBusier() {
        var cursor = 0
        let affinity = Affinity(matched: [7, 0], maxImbalance: 2)
        #expect(Scheduler.pick(members([2, 0]), policy: .prefixAware, cursor: &cursor, affinity: affinity) == 0, "2 more: within the guard")
        #expect(Scheduler.pick(members([3, 0]), policy: .prefixAware, cursor: &cursor, affinity: affinity) == 1, "3 more: beyond it")
        #expect(Scheduler.pick(members([4, 0]), policy: .prefixAware, cursor: &cursor,
                               affinity: Affinity(matched: [7, 0], maxImbalance: 100)) == 1, "a full owner never keeps a member idle")
    }

    @Test func aFullOwnerIsWaitedForWhenThePoolSaysItIsWorthItAndTheImbalanceIsSmall() {
        var cursor = 0
        let affinity = Affinity(matched: [7, 0], maxImbalance: 2, mayWait: true)
        #expect(Scheduler.pick(members([4, 2]), policy: .prefixAware, cursor: &cursor, affinity: affinity) == nil, "wait for the owner")
        #expect(Scheduler.pick(members([2, 0], capacity: 2), policy: .prefixAware, cursor: &cursor, affinity: affinity) == nil,
                "even beside an idle member, when the pool says the wait is worth it")
        #expect(Scheduler.pick(members([4, 2]), policy: .prefixAware, cursor: &cursor,
                               affinity: Affinity(matched: [7, 0], maxImbalance: 2, mayWait: false)) == 1, "not worth it: spill")
        #expect(Scheduler.pick(members([4, 1]), policy: .prefixAware, cursor: &cursor, affinity: affinity) == 1, "3 beyond: spill")
        #expect(Scheduler.pick(members([4, 2]), policy: .leastBusy, cursor: &cursor, affinity: affinity) == 1, "only prefixAware waits")
        #expect(Scheduler.pick(members([4, 2]), policy: .prefixAware, cursor: &cursor, excluding: ["m/0#0"], affinity: affinity) == 1,
                "a member failed over from is never waited for")
        #expect(Scheduler.pick(members([4, 4]), policy: .prefixAware, cursor: &cursor, affinity: affinity) == nil)
    }

    @Test func equalMatchesGoToTheLeastBusyThenInRotation() {
        var cursor = 0
        let affinity = Affinity(matched: [4, 4, 4])
        #expect(Scheduler.pick(members([1, 0, 1]), policy: .prefixAware, cursor: &cursor, affinity: affinity) == 1)
        cursor = 2
        #expect(Scheduler.pick(members([0, 0, 0]), policy: .prefixAware, cursor: &cursor, affinity: affinity) == 2)
    }

    @Test func aSessionSticksUnderEveryPolicyButRoundRobinWhileItsMemberHasASlot() {
        let sticky = Affinity(sticky: 2)
        for policy in [SchedulingPolicy.leastBusy, .prefixAware] {
            var cursor = 0
            #expect(Scheduler.pick(members([0, 0, 3]), policy: policy, cursor: &cursor, affinity: sticky) == 2, "\(policy)")
            #expect(Scheduler.pick(members([0, 0, 4]), policy: policy, cursor: &cursor, affinity: sticky) == 0, "\(policy): saturated")
        }
        var cursor = 0
        #expect(Scheduler.pick(members([0, 0, 0]), policy: .roundRobin, cursor: &cursor, affinity: sticky) == 0)
    }

    @Test func excludedAndUnreadyMembersAreNeverChosenForTheirCache() {
        var cursor = 0
        var pool = members([0, 0])
        pool[0].ready = false
        #expect(Scheduler.pick(pool, policy: .prefixAware, cursor: &cursor, affinity: Affinity(matched: [9, 0])) == 1)
        #expect(Scheduler.pick(members([0, 0]), policy: .prefixAware, cursor: &cursor, excluding: ["m/0#0"],
                               affinity: Affinity(matched: [9, 0])) == 1)
    }
}
