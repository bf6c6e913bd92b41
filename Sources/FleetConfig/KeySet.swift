import Foundation
import Synchronization

/// The keys a fleet accepts: `apiKeys` for everything but `/health`, `adminKeys` (when any are set) alone for
/// the mutating control endpoints. Compared in constant time; never logged or printed (`description` says how
/// many, not which).
public struct KeySet: Sendable, Equatable, CustomStringConvertible {
    public var user: [String]
    public var admin: [String]

    public init(user: [String] = [], admin: [String] = []) {
        self.user = user.filter { !$0.isEmpty }
        self.admin = admin.filter { !$0.isEmpty }
    }

    /// Whether any key is set: without one, nothing is required.
    public var isEnabled: Bool { !user.isEmpty || !admin.isEmpty }

    /// What a presented key may do.
    public enum Grant: Sendable, Equatable {
        case none, user, admin
    }

    /// Checks `key` against every configured key, always all of them and each in constant time, so the time
    /// taken says nothing about which key (or how much of one) matched.
    public func grant(for key: String?) -> Grant {
        guard let key else { return .none }
        let presented = Array(key.utf8)
        var isAdmin = false
        var isUser = false
        for candidate in admin { isAdmin = Self.constantTimeEquals(presented, Array(candidate.utf8)) || isAdmin }
        for candidate in user { isUser = Self.constantTimeEquals(presented, Array(candidate.utf8)) || isUser }
        if isAdmin { return .admin }
        // Without adminKeys, every key is an admin key.
        if isUser { return admin.isEmpty ? .admin : .user }
        return .none
    }

    /// Byte-wise comparison whose time depends only on the lengths, never on where the bytes differ.
    static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        difference |= UInt8(a.count == b.count ? 0 : 1)
        let length = max(a.count, b.count)
        for index in 0..<length {
            let x = index < a.count ? a[index] : 0
            let y = index < b.count ? b[index] : 0
            difference |= x ^ y
        }
        return difference == 0
    }

    public var description: String { "\(user.count) API key(s), \(admin.count) admin key(s)" }

    /// Keys from the environment: `FLEET_API_KEYS` and `FLEET_ADMIN_KEYS`, comma-separated, added to the file's.
    public func adding(environment: [String: String]) -> KeySet {
        func split(_ name: String) -> [String] {
            (environment[name] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        return KeySet(user: user + split("FLEET_API_KEYS"), admin: admin + split("FLEET_ADMIN_KEYS"))
    }

    /// Reads a key file: one key per line; blank lines and lines starting with `#` are skipped.
    public static func readFile(_ path: String) throws -> [String] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return text.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
    }
}

