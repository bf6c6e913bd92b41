import ArgumentParser
import FleetKit
import Foundation

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show every instance of the running fleet.",
        discussion: "Exits with status 1 when no controller answers at the address."
    )

    @OptionGroup var controller: ControllerOptions

    @Flag(help: "Print the controller's /status JSON instead of a table.")
    var json = false

    func run() async throws {
        let client = controller.client
        do {
            if json {
                say(try await client.statusJSON())
            } else {
                say(StatusTable.render(try await client.status()))
            }
        } catch {
            throw failure("\(error)")
        }
    }
}
