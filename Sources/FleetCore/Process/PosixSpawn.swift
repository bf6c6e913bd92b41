import Foundation
import Glibc

/// `posix_spawn` for the processes fleet starts outside swift-subprocess (the detached controller of
/// `fleet up --detach`; the tests' child processes): standard streams to files, signal dispositions reset, no
/// other descriptor of this process inherited. Not Foundation's `Process`, whose `run()` over-reads
/// `/proc/self/fd` entries and crashes now and then on Linux (swift-corelibs-foundation#5472).
public enum PosixSpawn {
    public struct Failed: Error, CustomStringConvertible {
        public var executable: String
        public var code: Int32
        public var description: String { "cannot start \(executable): \(String(cString: strerror(code)))" }
    }

    /// Starts `command` (executable path, then arguments) and returns its pid.
    /// - Parameters:
    ///   - environment: the child's whole environment; nil passes this process's own.
    ///   - output: stdout (appended, created if need be); stderr goes there too unless `errorOutput` is given.
    ///   - newSession: lead a new session, so a terminal's SIGINT and SIGHUP do not reach it.
    ///   - blockSignals: start with every signal blocked (as Foundation's `Process` starts children); otherwise
    ///     none is.
    public static func spawn(_ command: [String], environment: [String: String]? = nil, input: String = "/dev/null",
                             output: String = "/dev/null", errorOutput: String? = nil, newSession: Bool = false,
                             blockSignals: Bool = false) throws(Failed) -> Int32 {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Dispositions and mask start clean: this process's own signal handling (an ignored SIGTERM for its
        // signal source) must not be inherited, or the child could not be stopped.
        var defaults = sigset_t()
        sigfillset(&defaults)
        var mask = sigset_t()
        if blockSignals { sigfillset(&mask) } else { sigemptyset(&mask) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &mask)
        // POSIX_SPAWN_SETSID is glibc's 0x80 (2.26 and later).
        let session: Int32 = newSession ? 0x80 : 0
        posix_spawnattr_setflags(&attributes, Int16(session | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, input, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        if let errorOutput {
            posix_spawn_file_actions_addopen(&actions, 2, errorOutput, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        // Nothing else this process holds may leak into the child: an inherited pipe end would keep whoever
        // reads our output waiting for an EOF that never comes, an inherited socket would keep its port.
        // (FileManager lists /proc/self/fd safely; glibc ignores EBADF for one closed meanwhile.)
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.compactMap(Int32.init) ?? []
        for fd in open where fd > 2 {
            posix_spawn_file_actions_addclose(&actions, fd)
        }

        let argv = command.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let result: Int32
        if let environment {
            let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
            defer { envp.forEach { free($0) } }
            result = posix_spawn(&pid, command[0], &actions, &attributes, argv, envp)
        } else {
            result = posix_spawn(&pid, command[0], &actions, &attributes, argv, environ)
        }
        guard result == 0 else { throw Failed(executable: command[0], code: result) }
        return pid
    }
}
