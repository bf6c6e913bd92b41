import ArgumentParser
import FleetKit
import Foundation

struct Validate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a fleet.json and print every problem in it.",
        discussion: "Exits with status 2 when the file has problems, 0 when it is ready for `fleet up`."
    )

    @Option(name: .shortAndLong, help: "The fleet.json to check.")
    var config: String = "fleet.json"

    func run() async throws {
        let fleet: FleetConfig
        do {
            fleet = try FleetConfig.load(file: config)
        } catch {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode(2)
        }
        let instances = fleet.models.reduce(0) { $0 + $1.replicas }
        say("\(config): OK — \(fleet.models.count) model(s), \(instances) instance(s), listening on \(fleet.listen)")
        for model in fleet.models {
            let aliases = model.aliases.isEmpty ? "" : " (aliases: \(model.aliases.joined(separator: ", ")))"
            say("  \(model.name)\(aliases): \(model.replicas) × \(model.path)")
        }
        do {
            say("llama-server: \(try LlamaServerLocator.locate(configured: fleet.llamaServer))")
        } catch {
            say("warning: \(error.description)")
        }
    }
}
