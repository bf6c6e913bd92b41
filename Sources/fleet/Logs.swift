import ArgumentParser
import FleetClient
import FleetConfig
import FleetCore
import FleetServer
import FleetSupervision
import Foundation

struct Logs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print (and follow) an instance's captured output.",
        discussion: """
            MODEL/REPLICA names one replica (`gemma/1`); MODEL alone is enough for a model with one replica. The \
            output is llama-server's standard output and error, with fleet's markers between process lives \
            (`--- fleet: spawning ... ---`). With --follow it keeps printing what the instance writes, across \
            hot swaps and restarts, until Ctrl-C or the controller stops. Reads GET /logs on the controller, so \
            it works with --url against a controller on another machine.
            """
    )

    @Argument(help: "MODEL or MODEL/REPLICA, e.g. gemma/0.")
    var instance: String

    @Flag(name: .shortAndLong, help: "Keep printing new output as it is written.")
    var follow = false

    @Option(name: [.customShort("n"), .long], help: "How many of the last lines to print first.")
    var lines = 100

    @OptionGroup var controller: ControllerOptions

    func run() async throws {
        var model = instance
        var replica: Int?
        if let slash = instance.lastIndex(of: "/") {
            guard let number = Int(instance[instance.index(after: slash)...]), number >= 0 else {
                throw failure("\"\(instance)\" is not MODEL/REPLICA: the replica is a number, e.g. gemma/0 (see `fleet status`)", code: 2)
            }
            model = String(instance[..<slash])
            replica = number
        }
        let client = controller.client
        do {
            if follow {
                for try await text in try await client.followLogs(model: model, replica: replica, lines: lines) {
                    FileHandle.standardOutput.write(Data(text.utf8))
                }
            } else {
                FileHandle.standardOutput.write(Data(try await client.logs(model: model, replica: replica, lines: lines).utf8))
            }
        } catch {
            throw failure("\(error)")
        }
    }
}
