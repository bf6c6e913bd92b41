import ArgumentParser
import FleetKit

struct Version: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print fleet's version and the llama-server it would run.")

    func run() async throws {
        say("fleet \(FleetController.version)")
        if let server = try? LlamaServerLocator.locate(configured: nil) {
            say("llama-server: \(server)")
        } else {
            say("llama-server: not found (scripts/install-llama-server.sh builds it)")
        }
    }
}
