public import Foundation

/// Reading an instance's log file (written by `InstanceLog`) for `fleet logs` and `GET /logs/...`: its last lines,
/// and what is appended after them.
public enum LogFile {
    /// The last `count` lines of the file at `path` and the file's size when read (where following continues).
    /// Reads backwards in blocks, so a long log costs only what is shown.
    public static func tail(path: String, lines count: Int) -> (lines: [String], end: UInt64)? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let end = try? handle.seekToEnd() else { return nil }
        guard count > 0 else { return ([], end) }
        var position = end
        var data = Data()
        let block: UInt64 = 64 << 10
        // count newlines plus one: the last line ends with one.
        while position > 0 && data.reduce(0, { $0 + ($1 == 0x0A ? 1 : 0) }) <= count {
            let start = position > block ? position - block : 0
            try? handle.seek(toOffset: start)
            let chunk = (try? handle.read(upToCount: Int(position - start))) ?? Data()
            data = chunk + data
            position = start
        }
        var lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        // The first line may be cut in the middle when reading stopped inside it.
        return (Array(lines.suffix(count)), end)
    }

    /// What the file holds from `offset` on, and where it ends now; from its start when it shrank (recreated).
    public static func read(path: String, from offset: UInt64) -> (data: Data, end: UInt64) {
        guard let handle = FileHandle(forReadingAtPath: path) else { return (Data(), offset) }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? offset
        let start = size < offset ? 0 : offset
        guard size > start else { return (Data(), size) }
        try? handle.seek(toOffset: start)
        let data = (try? handle.read(upToCount: Int(size - start))) ?? Data()
        return (data, start + UInt64(data.count))
    }
}
