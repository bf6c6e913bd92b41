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
