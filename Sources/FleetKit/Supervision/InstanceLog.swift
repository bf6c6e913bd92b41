import Foundation

/// An instance's captured output: the last lines in memory (for status, errors and `fleet logs`) and every line
/// appended to a log file under the state directory. One per instance; both pipes write to it.
public actor InstanceLog {
    public nonisolated let filePath: String
    private let capacity: Int
    private var lines: [String] = []
    private var start = 0
    private var file: FileHandle?

    public init(filePath: String, capacity: Int = 500) {
        self.filePath = filePath
        self.capacity = capacity
        let directory = (filePath as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: filePath) {
            _ = FileManager.default.createFile(atPath: filePath, contents: nil)
        }
        file = FileHandle(forWritingAtPath: filePath)
        _ = try? file?.seekToEnd()
    }

    /// Standard error's own last lines: llama-server says why it died there.
    private var errorLines: [String] = []

    public func append(_ line: String, fromStandardError: Bool = false) {
        if fromStandardError {
            errorLines.append(line)
            if errorLines.count > 40 { errorLines.removeFirst(errorLines.count - 40) }
        }
        if lines.count < capacity {
            lines.append(line)
        } else {
            lines[start] = line
            start = (start + 1) % capacity
        }
        file?.write(Data((line + "\n").utf8))
    }

    /// Starts a new process life: its marker line, and a fresh standard-error tail.
    public func beginLife(_ text: String) {
        errorLines.removeAll()
        mark(text)
    }

    /// A marker line in the log (spawns, exits) so a reader can tell one process life from the next.
    public func mark(_ text: String) {
        append("--- fleet: \(text) ---")
    }

    /// The newest `count` lines of standard error, oldest first.
    public func errorTail(_ count: Int) -> [String] {
        Array(errorLines.suffix(count))
    }

    /// The newest `count` lines, oldest first.
    public func tail(_ count: Int) -> [String] {
        let ordered = Array(lines[start...] + lines[..<start])
        return Array(ordered.suffix(count))
    }

    deinit { try? file?.close() }
}
