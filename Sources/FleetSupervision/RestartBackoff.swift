/// Decides what happens after a crash: restart after an exponentially growing delay, or give up when the crashes
/// within the window reach `maxCrashes` (a crash loop), so a broken instance is reported instead of spinning.
/// Crashes older than the window are forgotten, which resets the delay for an instance that ran well for a while.
public struct RestartBackoff: Sendable {
    public enum Decision: Sendable, Equatable {
        case restart(after: Duration)
        case giveUp(crashes: Int)
    }

    public let settings: RestartSettings
    private(set) var crashes: [ContinuousClock.Instant] = []

    public init(settings: RestartSettings) {
        self.settings = settings
    }

    /// Records a crash at `now` and returns what to do.
    public mutating func recordCrash(at now: ContinuousClock.Instant) -> Decision {
        crashes.removeAll { now - $0 > settings.crashWindow }
        crashes.append(now)
        if crashes.count >= settings.maxCrashes {
            return .giveUp(crashes: crashes.count)
        }
        return .restart(after: delay(forCrash: crashes.count))
    }

    /// The wait before restart number `n` (1-based) in the current window.
    public func delay(forCrash n: Int) -> Duration {
        let factor = pow(settings.multiplier, Double(max(0, n - 1)))
        let seconds = min(settings.initialDelay.seconds * factor, settings.maxDelay.seconds)
        return .milliseconds(Int64((seconds * 1000).rounded()))
    }

    /// Crashes counted in the current window.
    public var recentCrashes: Int { crashes.count }
}

import Foundation
public import FleetConfig
import FleetCore
