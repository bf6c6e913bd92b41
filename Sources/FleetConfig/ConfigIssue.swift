/// One problem found in a configuration file: where it is and what to do about it.
public struct ConfigIssue: Sendable, Equatable, CustomStringConvertible {
    /// The key path inside the file, e.g. `models.gemma.replicas`; empty for the file as a whole.
    public var path: String
    /// What is wrong.
    public var message: String
    /// What to change so it is right.
    public var fix: String

    public init(path: String, message: String, fix: String) {
        self.path = path
        self.message = message
        self.fix = fix
    }

    public var description: String {
        (path.isEmpty ? "" : "\(path): ") + message + (fix.isEmpty ? "" : " (fix: \(fix))")
    }
}

/// The error `FleetConfig.load` throws: every problem in the file, not just the first.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    /// The file that was read (or a description of the source, for zero-config runs).
    public var file: String
    public var issues: [ConfigIssue]

    public init(file: String, issues: [ConfigIssue]) {
        self.file = file
        self.issues = issues
    }

    public var description: String {
        let count = issues.count == 1 ? "1 problem" : "\(issues.count) problems"
        return "\(file): \(count)\n" + issues.map { "  - \($0)" }.joined(separator: "\n")
    }
}
