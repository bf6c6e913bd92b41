import Foundation
import Subprocess
import SystemPackage

/// How a supervised process ended.
public struct ProcessExit: Sendable, Equatable, CustomStringConvertible {
    /// The exit code, or nil when a signal ended it.
    public var code: Int32?
    public var signal: Int32?

    public var description: String {
        if let code { return "exited with code \(code)" }
        if let signal { return "killed by signal \(signal)\(Self.signalNames[signal].map { " (\($0))" } ?? "")" }
        return "ended"
    }

    static let signalNames: [Int32: String] = [SIGKILL: "SIGKILL", SIGTERM: "SIGTERM", SIGSEGV: "SIGSEGV",
                                               SIGABRT: "SIGABRT", SIGINT: "SIGINT", SIGBUS: "SIGBUS", SIGILL: "SIGILL"]
}

/// Runs one child process the way fleet supervises them: in its own process group, stdout and stderr drained
/// line by line into the instance's log, killed with the controller (parent-death signal), and torn down with
/// SIGTERM to the group, a grace period, then SIGKILL when the calling task is cancelled.
enum ProcessLauncher {
    /// `setpriv` from util-linux sets the parent-death signal before exec'ing the real command.
    /// Environment variables that hold the controller's API keys: removed from every instance's environment.
    static let controllerSecrets = ["FLEET_API_KEYS", "FLEET_ADMIN_KEYS", "FLEET_API_KEY"]

    static let setpriv: String? = ["/usr/bin/setpriv", "/bin/setpriv"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Runs `command` until it exits, or until the task is cancelled (then stops it within `stopTimeout`).
    /// `started` is called with the pid once the process exists.
    /// - Throws: `SubprocessError` when the executable cannot be spawned.
    static func run(_ command: LlamaServerCommand, stopTimeout: Duration, log: InstanceLog,
                    started: @escaping @Sendable (Int32) async -> Void) async throws -> ProcessExit {
        var executable = command.executable
        var arguments = command.arguments
        if let setpriv {
            arguments = ["--pdeathsig", "KILL", "--", executable] + arguments
            executable = setpriv
        }
        var options = PlatformOptions()
        options.processGroupID = 0
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: stopTimeout)]
        var environment: [Environment.Key: String?] = [:]
        // The controller's own secrets never reach an instance (a model's `env` may still set them on purpose).
        for secret in ProcessLauncher.controllerSecrets { environment[Environment.Key(rawValue: secret)!] = .some(nil) }
        for (key, value) in command.environment { environment[Environment.Key(rawValue: key)!] = value }
        let finalExecutable = executable
        let finalArguments = arguments
        let finalEnvironment = environment

        let outcome = try await withTaskExecutorPreference(SpawnThread.shared) {
            try await Subprocess.run(
                .path(FilePath(finalExecutable)),
                arguments: Arguments(finalArguments),
                environment: .inherit.updating(finalEnvironment),
                platformOptions: options,
                input: .none,
                output: .sequence,
                error: .sequence
            ) { execution in
                // Only the fork needs the spawn thread. Reading and logging the output, and whatever the
                // instance's actor does when told, run on the global executor: one thread for every instance's
                // output would put a crash's detection behind the log lines of every other instance.
                await withTaskExecutorPreference(globalConcurrentExecutor) {
                    await started(execution.processIdentifier.value)
                    await withTaskGroup(of: Void.self) { group in
                        group.addTask {
                            do {
                                for try await line in execution.standardOutput.strings() { await log.append(line) }
                            } catch {}
                        }
                        group.addTask {
                            do {
                                for try await line in execution.standardError.strings() { await log.append(line, fromStandardError: true) }
                            } catch {}
                        }
                    }
                }
                // The pipes closed: the process exited, or cancellation stopped the reads. Either way the
                // process must be gone before run returns; throwing on cancellation triggers the teardown.
                try Task.checkCancellation()
            }
        }
        switch outcome.terminationStatus {
        case .exited(let code): return ProcessExit(code: code, signal: nil)
        case .signaled(let signal): return ProcessExit(code: nil, signal: signal)
        }
    }
}
