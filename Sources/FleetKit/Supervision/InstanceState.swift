/// Where an instance is in its life. Only `ready` instances take requests.
public enum InstanceState: String, Sendable, Codable, CaseIterable {
    /// The process is spawned and loading its model (`/health` answers 503, or nothing yet).
    case starting
    /// `/health` answers 200; the instance is in rotation.
    case ready
    /// Out of rotation: failing health checks, or crashed and waiting for its restart.
    case unhealthy
    /// SIGTERM sent; waiting for the process to exit.
    case stopping
    /// The process is gone because fleet stopped it.
    case stopped
    /// fleet gave up: a crash loop, or a start that cannot succeed. `lastError` says why.
    case failed

    /// Whether the supervisor may move an instance from this state to `next`. Anything else is a bug.
    public func canTransition(to next: InstanceState) -> Bool {
        switch (self, next) {
        case (.starting, .ready), (.starting, .unhealthy), (.starting, .failed), (.starting, .stopping):
            true
        case (.ready, .unhealthy), (.ready, .stopping):
            true
        case (.unhealthy, .ready), (.unhealthy, .starting), (.unhealthy, .failed), (.unhealthy, .stopping):
            true
        case (.stopping, .stopped), (.stopping, .failed):
            true
        case (.stopped, .starting), (.failed, .starting), (.failed, .stopping):
            true
        default:
            false
        }
    }

    /// Whether the instance's process may be running.
    public var isActive: Bool { self == .starting || self == .ready || self == .unhealthy || self == .stopping }
}

/// Names one replica of one model: `gemma/0`.
public struct InstanceID: Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    public var model: String
    public var replica: Int

    public init(model: String, replica: Int) {
        self.model = model
        self.replica = replica
    }

    public var description: String { "\(model)/\(replica)" }
    /// A name safe for files: `gemma-0`.
    public var fileName: String { "\(model)-\(replica)".replacingOccurrences(of: ":", with: "_") }

    public static func < (lhs: InstanceID, rhs: InstanceID) -> Bool {
        (lhs.model, lhs.replica) < (rhs.model, rhs.replica)
    }
}

import Foundation
