import Foundation
import Glibc
import FleetCore

/// `fleet up --detach`: starts the controller as a background process in its own session, with its output in
/// the state directory, so it outlives the terminal that started it.
public enum DetachedLaunch {
    public struct SpawnFailed: Error, CustomStringConvertible {
        public var errno: Int32
        public var description: String { "cannot start the background controller: \(String(cString: strerror(errno)))" }
    }

    /// Spawns `executable arguments` detached (new session, stdin from /dev/null, stdout and stderr appended to
    /// `logFile`, nothing else of the CLI's inherited) and returns its pid.
    /// - Throws: `SpawnFailed` with the OS error.
    public static func spawn(executable: String, arguments: [String], logFile: String) throws(SpawnFailed) -> Int32 {
        try? FileManager.default.createDirectory(atPath: (logFile as NSString).deletingLastPathComponent,
                                                 withIntermediateDirectories: true)
        do {
            return try PosixSpawn.spawn([executable] + arguments, output: logFile, newSession: true)
        } catch {
            throw SpawnFailed(errno: error.code)
        }
    }

    /// Whether the detached child has exited (and reaps it if so).
    public static func hasExited(_ pid: Int32) -> Bool {
        var status: Int32 = 0
        return waitpid(pid, &status, WNOHANG) == pid
    }
}

