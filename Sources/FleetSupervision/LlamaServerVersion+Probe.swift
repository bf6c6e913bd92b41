import Foundation
import Subprocess
import Synchronization
import SystemPackage
public import FleetCore

extension LlamaServerVersion {
    private static let known = Mutex<[String: LlamaServerVersion]>([:])

    /// Asks `executable --version` (once per path; later calls answer from memory). Nil when it does not answer
    /// within a few seconds or not in a form fleet knows.
    public static func of(executable: String) async -> LlamaServerVersion? {
        if let version = known.withLock({ $0[executable] }) { return version }
        let run = Task {
            try await Subprocess.run(.path(FilePath(executable)), arguments: ["--version"],
                                     output: .string(limit: 64 << 10), error: .string(limit: 64 << 10))
        }
        let timeout = Task {
            try await Task.sleep(for: .seconds(10))
            run.cancel()
        }
        defer { timeout.cancel() }
        guard let result = try? await run.value else { return nil }
        let version = parse(result.standardOutput + "\n" + result.standardError)
        if let version { known.withLock { $0[executable] = version } }
        return version
    }
}
