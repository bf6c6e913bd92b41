import Foundation
import Glibc

/// `fleet up --detach`: starts the controller as a background process in its own session, with its output in
/// the state directory, so it outlives the terminal that started it.
public enum DetachedLaunch {
    public struct SpawnFailed: Error, CustomStringConvertible {
        public var errno: Int32
        public var description: String { "cannot start the background controller: \(String(cString: strerror(errno)))" }
    }

    /// Spawns `executable arguments` detached (new session, stdin from /dev/null, stdout and stderr appended to
    /// `logFile`) and returns its pid.
    /// - Throws: `SpawnFailed` with the OS error.
    public static func spawn(executable: String, arguments: [String], logFile: String) throws(SpawnFailed) -> Int32 {
        try? FileManager.default.createDirectory(atPath: (logFile as NSString).deletingLastPathComponent,
                                                 withIntermediateDirectories: true)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // POSIX_SPAWN_SETSID (glibc >= 2.26, 0x80): the child leads a new session, so the terminal's SIGINT and
        // SIGHUP do not reach it. Signal mask and dispositions start clean: the CLI's own handling (ignored
        // SIGTERM for its signal source) must not be inherited, or the controller could not be stopped.
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setflags(&attributes, Int16(0x80 | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logFile, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else the CLI holds may leak into a process that outlives it: an inherited pipe end would keep
        // whoever reads the CLI's output (a script, a test) waiting for an EOF that never comes.
        // (glibc ignores EBADF here, so a descriptor closed meanwhile does no harm.)
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.compactMap(Int32.init) ?? []
        for fd in open where fd > 2 {
            posix_spawn_file_actions_addclose(&actions, fd)
        }

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        guard result == 0 else { throw SpawnFailed(errno: result) }
        return pid
    }

    /// Whether the detached child has exited (and reaps it if so).
    public static func hasExited(_ pid: Int32) -> Bool {
        var status: Int32 = 0
        return waitpid(pid, &status, WNOHANG) == pid
    }
}

/// Process checks the CLI needs while it waits for a controller to go away.
public enum ProcessProbe {
    /// Whether `pid` names a live process (a zombie counts as gone: it has already exited).
    public static func isAlive(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 || errno == EPERM else { return false }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return true }
        let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).prefix(1)
        return state != "Z" && state != "X"
    }

    /// The path of the running executable.
    public static var currentExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}
