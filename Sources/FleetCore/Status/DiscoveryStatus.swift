public import Foundation

/// One `discover` entry of a model as `/status` shows it: what it found, when, and why the last lookup failed.
public struct DiscoveryStatus: Codable, Sendable, Equatable {
    /// `dns NAME:PORT` or `srv NAME`.
    public var source: String
    /// The members it names now (`http://address:port`): the last good answer, kept when a lookup fails.
    public var members: [String]
    /// When the last lookup succeeded (nil before the first).
    public var resolvedAt: Date?
    /// Why the last lookup failed (nil when it succeeded): the members above are the last good set.
    public var error: String?

    public init(source: String, members: [String] = [], resolvedAt: Date? = nil, error: String? = nil) {
        self.source = source
        self.members = members
        self.resolvedAt = resolvedAt
        self.error = error
    }
}
