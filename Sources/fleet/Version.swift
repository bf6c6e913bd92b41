import ArgumentParser
import FleetClient
import FleetConfig
import FleetCore
import FleetServer
import FleetSupervision
import Foundation

struct Version: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print fleet's version and the llama-server it would run, with that server's build.",
        discussion: """
            The llama-server is the one `fleet up` would run: fleet.json's "llamaServer" (--config), else
            FLEET_LLAMA_SERVER or LLAMACPP_EXECUTABLE, else the build scripts/install-llama-server.sh makes.
            """
    )

    @Option(name: .shortAndLong, help: "The fleet.json whose \"llamaServer\" to ask (read leniently; it may be absent).")
    var config: String = "fleet.json"

    func run() async throws {
        say("fleet \(FleetController.version)")
        // Only the llamaServer key matters here: a fleet.json with other problems still names it.
        let configured = ControlClient.llamaServer(configPath: config)
        guard let server = try? LlamaServerLocator.locate(configured: configured) else {
            say("llama-server: not found (scripts/install-llama-server.sh builds it)")
            return
        }
        guard let version = await LlamaServerVersion.of(executable: server) else {
            say("llama-server: \(server), version unknown (`\(server) --version` did not say)")
            return
        }
        say("llama-server: \(server), \(version)")
        if let refusal = LlamaServerVersion.refusal(version, executable: server) {
            say("warning: \(refusal)")
        } else if version.build == 0 {
            say("note: this build does not know its build number; fleet is tested with b\(LlamaServerVersion.oldestSupported)")
        }
    }
}
