public import Foundation
import Glibc
import Synchronization
import FleetConfig
import FleetCore
import FleetSupervision
import FleetUpstream

/// A child process for tests, started with `PosixSpawn` rather than Foundation's `Process`, whose `run()`
/// crashed twice in ~15 full runs here (swift-corelibs-foundation#5472). The child gets stdin from a file or
/// /dev/null, stdout and stderr into files (or /dev/null), the test process's environment plus `environment`,
/// and none of the test process's other descriptors.
public final class ChildProcess: Sendable {
    public let processIdentifier: Int32
    /// The exit status once reaped (the code, or 128 + the signal); one owner: this lock.
    private let exit = Mutex<Int32?>(nil)

    /// - Parameters:
    ///   - errorOutput: where stderr goes; with `output` when nil.
    ///   - blockSignals: start with every signal blocked, as Foundation's `Process` does (to check that a
    ///     program unblocks what it needs).
    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:], directory: String? = nil,
                input: String? = nil, output: String? = nil, errorOutput: String? = nil, blockSignals: Bool = false) throws {
        // A working directory through the shell: glibc's posix_spawn_file_actions_addchdir_np is not visible
        // to Swift.
        var command = [executable] + arguments
        if let directory { command = ["/bin/sh", "-c", #"cd -- "$0" && exec "$@""#, directory] + command }
        processIdentifier = try PosixSpawn.spawn(
            command, environment: ProcessInfo.processInfo.environment.merging(environment) { $1 },
            input: input ?? "/dev/null", output: output ?? "/dev/null", errorOutput: errorOutput, blockSignals: blockSignals)
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
