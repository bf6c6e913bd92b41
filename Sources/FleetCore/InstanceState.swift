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
    /// Not running because unused: an `onDemand` model before its first request, or a model past its
    /// `idleTimeout`. The next request starts it.
    case idle

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
        case (.stopped, .starting), (.stopped, .failed), (.failed, .starting), (.failed, .stopping):
            true
        default:
            false
        }
    }

    /// Whether the instance's process may be running.
    public var isActive: Bool { self == .starting || self == .ready || self == .unhealthy || self == .stopping }
}

/// Names one replica of one model, `gemma/0`, and which process generation fills that replica: a hot-swap
/// restart starts generation n+1 beside generation n before retiring it.
public struct InstanceID: Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    public var model: String
    public var replica: Int
    public var generation: Int

    public init(model: String, replica: Int, generation: Int = 0) {
        self.model = model
        self.replica = replica
        self.generation = generation
    }

    /// The replica, as users name it: `gemma/0`.
    public var description: String { Self.label(model: model, replica: replica) }

    /// How fleet names a replica everywhere (status, logs, metrics): `gemma/0`.
    public static func label(model: String, replica: Int) -> String { "\(model)/\(replica)" }
    /// Unique across generations (`gemma/0#1`): how pools tell an instance from its replacement.
    public var memberID: String { "\(model)/\(replica)#\(generation)" }
    /// A name safe for files: `gemma-0`, then `gemma-0-g1` for a replacement.
    public var fileName: String {
        "\(model)-\(replica)".replacingOccurrences(of: ":", with: "_") + (generation == 0 ? "" : "-g\(generation)")
    }

    public static func < (lhs: InstanceID, rhs: InstanceID) -> Bool {
        (lhs.model, lhs.replica, lhs.generation) < (rhs.model, rhs.replica, rhs.generation)
    }
}

import Foundation
