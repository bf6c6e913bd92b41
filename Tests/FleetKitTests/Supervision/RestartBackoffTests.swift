import Foundation
import FleetTestSupport
import Testing
@testable import FleetConfig
@testable import FleetSupervision

@Suite("restart backoff")
struct RestartBackoffTests {
    func settings(initial: Duration = .seconds(1), max: Duration = .seconds(30), multiplier: Double = 2,
                  maxCrashes: Int = 5, window: Duration = .seconds(60)) -> RestartSettings {
        var s = RestartSettings()
        s.initialDelay = initial
        s.maxDelay = max
        s.multiplier = multiplier
        s.maxCrashes = maxCrashes
        s.crashWindow = window
        return s
    }

    @Test func delaysGrowExponentiallyUpToTheCap() {
        var backoff = RestartBackoff(settings: settings(max: .seconds(5), maxCrashes: 100))
        let start = ContinuousClock.now
        let delays = (0..<5).map { backoff.recordCrash(at: start + .seconds($0)) }
        #expect(delays == [.restart(after: .seconds(1)), .restart(after: .seconds(2)), .restart(after: .seconds(4)),
                           .restart(after: .seconds(5)), .restart(after: .seconds(5))])
    }

    @Test func crashLoopGivesUpAtMaxCrashes() {
        var backoff = RestartBackoff(settings: settings(maxCrashes: 3))
        let start = ContinuousClock.now
        #expect(backoff.recordCrash(at: start) == .restart(after: .seconds(1)))
        #expect(backoff.recordCrash(at: start + .seconds(1)) == .restart(after: .seconds(2)))
        #expect(backoff.recordCrash(at: start + .seconds(2)) == .giveUp(crashes: 3))
    }

    @Test func crashesOutsideTheWindowAreForgotten() {
        var backoff = RestartBackoff(settings: settings(maxCrashes: 3, window: .seconds(10)))
        let start = ContinuousClock.now
        _ = backoff.recordCrash(at: start)
        _ = backoff.recordCrash(at: start + .seconds(1))
        // A long healthy run later: the old crashes no longer count, and the delay starts small again.
        #expect(backoff.recordCrash(at: start + .seconds(60)) == .restart(after: .seconds(1)))
        #expect(backoff.recentCrashes == 1)
    }
}
