public import Foundation
import Glibc
import Synchronization

/// A child process for tests, started with `posix_spawn` rather than Foundation's `Process`: on Linux with Swift
/// 6.3.1, `Process.run()` over-reads a `/proc/self/fd` directory entry and crashes now and then (seen twice in
/// ~15 full runs here; swift-corelibs-foundation#5472). The child gets stdin from a file or /dev/null, stdout and
/// stderr into a file (or /dev/null), the test process's environment plus `environment`, and none of the test
/// process's other descriptors.
public final class ChildProcess: Sendable {
    public let processIdentifier: Int32
    /// The exit status once reaped (the code, or 128 + the signal); one owner: this lock.
    private let exit = Mutex<Int32?>(nil)

    public struct SpawnFailed: Error, CustomStringConvertible {
        public var executable: String
        public var code: Int32
        public var description: String { "cannot start \(executable): \(String(cString: strerror(code)))" }
    }

    /// - Parameters:
    ///   - errorOutput: where stderr goes; with `output` when nil.
    ///   - blockSignals: start with every signal blocked, as Foundation's `Process` does (to check that a
    ///     program unblocks what it needs).
    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:], directory: String? = nil,
                input: String? = nil, output: String? = nil, errorOutput: String? = nil, blockSignals: Bool = false) throws {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigfillset(&defaults)
        var mask = sigset_t()
        if blockSignals { sigfillset(&mask) } else { sigemptyset(&mask) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, input ?? "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        if let errorOutput {
            posix_spawn_file_actions_addopen(&actions, 2, errorOutput, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        // FileManager reads /proc/self/fd safely (the over-read above is Process's own loop).
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.compactMap(Int32.init) ?? []
        for fd in open where fd > 2 { posix_spawn_file_actions_addclose(&actions, fd) }

        // A working directory through the shell: glibc's posix_spawn_file_actions_addchdir_np is not visible
        // to Swift.
        var command = [executable] + arguments
        if let directory { command = ["/bin/sh", "-c", #"cd -- "$0" && exec "$@""#, directory] + command }
        let argv = command.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let merged = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, command[0], &actions, &attributes, argv, envp)
        guard result == 0 else { throw SpawnFailed(executable: executable, code: result) }
        processIdentifier = pid
    }

    /// Whether it still runs (reaps it when it has exited).
    public var isRunning: Bool { reap(blocking: false) == nil }

    /// Blocks until it exits; its status. Only off the cooperative pool (`runCommand` uses a thread of its own).
    @discardableResult
    public func waitUntilExit() -> Int32 { reap(blocking: true) ?? -1 }

    /// Its exit status once it has exited (128 + signal when a signal ended it).
    public var terminationStatus: Int32? { exit.withLock { $0 } }

    public func terminate() { kill(processIdentifier, SIGTERM) }

    private func reap(blocking: Bool) -> Int32? {
        if let known = exit.withLock({ $0 }) { return known }
        var status: Int32 = 0
        let reaped = waitpid(processIdentifier, &status, blocking ? 0 : WNOHANG)
        guard reaped == processIdentifier else { return reaped < 0 ? exit.withLock { $0 } ?? -1 : nil }
        // WIFEXITED / WEXITSTATUS / WTERMSIG, spelled out (the C macros do not come through).
        let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        exit.withLock { $0 = code }
        return code
    }
}
