import ArgumentParser
import FleetClient
import FleetConfig
import FleetCore
import FleetServer
import FleetSupervision
import Foundation

struct Swap: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Move a model onto another GGUF without failing a request.",
        discussion: """
            The file is checked first. Then, replica by replica, a replacement on the new GGUF starts, becomes ready and
            takes over, and the old instance drains and stops. fleet.json's "path" for the model is updated (in place,
            the rest of the file untouched) only once every replica runs the new file. If a replacement does not
            start, the old instances keep serving and the command says why.
            """
    )

    @OptionGroup var controller: ControllerOptions

    @Argument(help: "The model to swap.")
    var model: String

    @Argument(help: "The new GGUF file.")
    var path: String

    func run() async throws {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        do {
            say("swapping \(model) to \(absolute)…")
            let result = try await controller.client.swap(model: model, path: absolute)
            for swap in result.replaced {
                say("  \(swap.replica): pid \(swap.oldPid.map(String.init) ?? "-") → pid \(swap.newPid.map(String.init) ?? "-") on port \(swap.newPort.map(String.init) ?? "-")")
            }
            if let update = result.configUpdate { say("fleet.json \(update)") }
            say("  " + result.requestsSummary)
            say("done: \(model) runs \(absolute)")
        } catch {
            throw failure("\(error)")
        }
    }
}
