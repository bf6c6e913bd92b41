import ArgumentParser
import FleetClient
import FleetConfig
import FleetCore
import FleetServer
import FleetSupervision
import Foundation

struct Restart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restart a model's instances without failing a request (hot swap).",
        discussion: """
            For each replica in turn: start a replacement on a new port, wait until it is ready, put it in rotation,
            take the old one out, let its requests finish (drainTimeout), stop it. If a replacement does not start,
            the old instance keeps serving and the command says why. --all restarts every model, one at a time.
            """
    )

    @OptionGroup var controller: ControllerOptions

    @Argument(help: "The model to restart.")
    var model: String?

    @Flag(help: "Restart every model, one model at a time.")
    var all = false

    func validate() throws {
        if all == (model != nil) {
            throw ValidationError("name one model, or pass --all")
        }
    }

    func run() async throws {
        let client = controller.client
        do {
            let models = all ? try await client.status().models.map(\.name) : [model!]
            var failed = 0
            for name in models {
                say("restarting \(name)…")
                let result = try await client.restart(model: name)
                for swap in result.replaced {
                    say("  \(swap.replica): pid \(swap.oldPid.map(String.init) ?? "-") on port \(swap.oldPort.map(String.init) ?? "-") → pid \(swap.newPid.map(String.init) ?? "-") on port \(swap.newPort.map(String.init) ?? "-")")
                }
                say("  " + result.requestsSummary)
                failed += result.requests?.failed ?? 0
            }
            say(failed == 0 ? "done" : "done, but \(failed) request(s) failed meanwhile: `fleet status` and `fleet logs` show why")
        } catch {
            throw failure("\(error)")
        }
    }
}
