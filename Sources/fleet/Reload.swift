import ArgumentParser
import FleetClient
import FleetConfig
import FleetCore
import FleetServer
import FleetSupervision
import Foundation

struct Reload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply the changes in fleet.json to the running fleet, touching only what changed.",
        discussion: """
            The file is validated first: an invalid file changes nothing and its problems are printed. Then new models
            start, removed models drain and stop, models whose llama-server settings changed are hot-swapped, replica
            counts scale (scaling down drains). Unchanged models keep their processes. Sending SIGHUP to the
            controller does the same.
            """
    )

    @OptionGroup var controller: ControllerOptions

    func run() async throws {
        let result: ReloadResult
        do {
            result = try await controller.client.reload()
        } catch {
            throw failure("\(error)")
        }
        guard result.errors.isEmpty, let applied = result.applied else {
            FileHandle.standardError.write(Data(("fleet.json is invalid; nothing changed:\n"
                + result.errors.map { "  - \($0)" }.joined(separator: "\n") + "\n").utf8))
            throw ExitCode(2)
        }
        func line(_ label: String, _ names: [String]) {
            if !names.isEmpty { say("\(label): \(names.joined(separator: ", "))") }
        }
        line("added", applied.added)
        line("removed", applied.removed)
        line("restarted", applied.restarted)
        line("scaled", applied.scaled)
        line("reconfigured (routing only)", applied.reconfigured)
        line("unchanged", applied.unchanged)
        if !result.needsControllerRestart.isEmpty {
            say("changed but applied only after `fleet down && fleet up`: \(result.needsControllerRestart.joined(separator: ", "))")
        }
        if !applied.errors.isEmpty {
            throw failure("some changes failed (those models keep running as before):\n" + applied.errors.map { "  - \($0)" }.joined(separator: "\n"))
        }
    }
}
