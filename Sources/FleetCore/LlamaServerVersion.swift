import Foundation

/// What a llama-server binary says it is (`llama-server --version`): llama.cpp's version, its build number and
/// commit. fleet asks once per binary, shows it (`fleet version`, `/status`, the dashboard) and refuses builds
/// older than `oldestSupported`.
public struct LlamaServerVersion: Sendable, Codable, Equatable, CustomStringConvertible {
    /// llama.cpp's version string (`0.6.0-dev`), when it printed one.
    public var version: String?
    /// The build number (`b11434`); 0 when the binary does not know it (built from a tree without git metadata).
    public var build: Int
    public var commit: String

    /// The oldest build fleet runs: the one its tests run (`scripts/install-llama-server.sh` builds it).
    public static let oldestSupported = 11434

    public init(version: String?, build: Int, commit: String) {
        self.version = version
        self.build = build
        self.commit = commit
    }

    public var description: String {
        let build = self.build > 0 ? "b\(self.build)" : "build unknown"
        return "\(build) (commit \(commit)\(version.map { ", llama.cpp \($0)" } ?? ""))"
    }

    /// Whether the build number is known and older than fleet supports.
    public var isTooOld: Bool { build > 0 && build < Self.oldestSupported }

    /// Parses `version: 0.6.0-dev (build 11434, commit abc)` (recent llama.cpp) or `version: 6789 (a1b2c3d)`
    /// (older builds print the build number there).
    public static func parse(_ output: String) -> LlamaServerVersion? {
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("version:") }) else { return nil }
        let text = line.dropFirst("version:".count).trimmingCharacters(in: .whitespaces)
        guard let open = text.firstIndex(of: "("), let close = text.lastIndex(of: ")"), open < close else { return nil }
        let head = text[..<open].trimmingCharacters(in: .whitespaces)
        let inside = text[text.index(after: open)..<close]
        if inside.hasPrefix("build ") {
            let parts = inside.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            let build = parts.first.flatMap { Int($0.dropFirst("build ".count)) } ?? 0
            let commit = parts.dropFirst().first.map { $0.hasPrefix("commit ") ? String($0.dropFirst("commit ".count)) : $0 } ?? "unknown"
            return LlamaServerVersion(version: head.isEmpty ? nil : head, build: build, commit: commit)
        }
        guard let build = Int(head) else { return nil }
        return LlamaServerVersion(version: nil, build: build, commit: String(inside))
    }

    /// Why a binary cannot be run, with the command that installs one that can; nil when it can.
    public static func refusal(_ version: LlamaServerVersion?, executable: String) -> String? {
        guard let version, version.isTooOld else { return nil }
        return "\(executable) is llama-server \(version), older than the oldest build fleet supports (b\(oldestSupported)); build the pinned one with scripts/install-llama-server.sh and point \"llamaServer\" in fleet.json (or FLEET_LLAMA_SERVER) at it"
    }
}
