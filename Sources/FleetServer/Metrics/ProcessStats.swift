import Foundation

/// The controller process as `/proc` sees it (Linux); zeros where `/proc` is not available.
struct ProcessStats {
    var cpuSeconds: Double = 0
    var residentBytes: Int = 0
    var openFileDescriptors: Int = 0

    static func current() -> ProcessStats {
        var stats = ProcessStats()
        // /proc/self/stat: fields after the command name (which is in parentheses and may hold spaces);
        // utime and stime are the 14th and 15th fields, in clock ticks.
        if let text = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
           let close = text.lastIndex(of: ")") {
            let fields = text[text.index(after: close)...].split(separator: " ")
            if fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) {
                stats.cpuSeconds = (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
            }
        }
        if let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) {
            let fields = text.split(separator: " ")
            if fields.count > 1, let pages = Int(fields[1]) {
                stats.residentBytes = pages * Int(sysconf(Int32(_SC_PAGESIZE)))
            }
        }
        stats.openFileDescriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
        return stats
    }
}
