import Foundation

/// An instance's captured output: every line appended to a log file under the state directory (`fleet logs`
/// reads it), and standard error's last lines in memory (why a process died, for status). One per instance;
/// both pipes write to it.
public actor InstanceLog {
    public nonisolated let filePath: String
    private var file: FileHandle?

    public init(filePath: String) {
        self.filePath = filePath
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

    deinit { try? file?.close() }
}
