import FleetTestSupport
import Foundation
import Testing
@testable import FleetConfig

@Suite("memory budget rules")
struct MemoryBudgetTests {
    let gib = 1 << 30

    @Test func aFleetWhoseStartingModelsExceedTheBudgetIsRefused() {
        let entries = [MemoryBudget.Entry(name: "a", cost: 3 * gib, startsWithFleet: true, evictable: false),
                       MemoryBudget.Entry(name: "b", cost: 2 * gib, startsWithFleet: true, evictable: true)]
        let problems = MemoryBudget.problems(entries, budget: 4 * gib)
        #expect(problems.map(\.path) == ["memoryBudget"])
        #expect(problems[0].message.contains("a 3.0 GiB, b 2.0 GiB"))
        #expect(MemoryBudget.problems(entries, budget: 5 * gib).isEmpty)
    }

    @Test func anOnDemandModelThatCanNeverFitBesideTheAlwaysRunningOnesIsRefused() {
        let entries = [MemoryBudget.Entry(name: "pinned", cost: 3 * gib, startsWithFleet: true, evictable: false),
                       MemoryBudget.Entry(name: "small", cost: 1 * gib, startsWithFleet: false, evictable: true),
                       MemoryBudget.Entry(name: "big", cost: 2 * gib, startsWithFleet: false, evictable: true)]
        let problems = MemoryBudget.problems(entries, budget: 4 * gib)
        #expect(problems.map(\.path) == ["models.big"], "small fits beside pinned; big never does")
        #expect(problems.first?.fix.contains("memoryBudget") == true)
    }

    @Test func evictionTakesTheLeastRecentlyUsedIdleModelsUntilItFits() {
        let now = ContinuousClock.now
        let residents = [
            MemoryBudget.Resident(name: "recent", cost: gib, evictable: true, busy: false, lastUsed: now),
            MemoryBudget.Resident(name: "oldest", cost: gib, evictable: true, busy: false, lastUsed: now - .seconds(60)),
            MemoryBudget.Resident(name: "older", cost: gib, evictable: true, busy: false, lastUsed: now - .seconds(30)),
        ]
        #expect(MemoryBudget.evictions(need: gib, budget: 4 * gib, residents: residents) == [])
        #expect(MemoryBudget.evictions(need: gib, budget: 3 * gib, residents: residents) == ["oldest"])
        #expect(MemoryBudget.evictions(need: 2 * gib, budget: 3 * gib, residents: residents) == ["oldest", "older"])
    }

    @Test func busyAndAlwaysRunningModelsAreNeverEvicted() {
        let now = ContinuousClock.now
        let residents = [
            MemoryBudget.Resident(name: "busy", cost: gib, evictable: true, busy: true, lastUsed: now - .seconds(90)),
            MemoryBudget.Resident(name: "pinned", cost: gib, evictable: false, busy: false, lastUsed: now - .seconds(60)),
            MemoryBudget.Resident(name: "idle", cost: gib, evictable: true, busy: false, lastUsed: now),
        ]
        #expect(MemoryBudget.evictions(need: gib, budget: 3 * gib, residents: residents) == ["idle"])
        #expect(MemoryBudget.evictions(need: 2 * gib, budget: 3 * gib, residents: residents) == nil,
                "only one idle evictable model: room for 2 GiB cannot be made")
    }
}
