import ArgumentParser
import FleetClient
import FleetConfig
import FleetCore
import FleetServer
import FleetSupervision
import Foundation

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show every instance of the running fleet.",
        discussion: "Exits with status 1 when no controller answers at the address."
    )

    @OptionGroup var controller: ControllerOptions

    @Flag(help: "Print the controller's /status JSON instead of a table.")
    var json = false

    @Flag(name: .shortAndLong, help: "Refresh the table in place every --interval seconds until Ctrl-C.")
    var watch = false

    @Option(help: "Seconds between refreshes with --watch.")
    var interval: Double = 1

    func run() async throws {
        let client = controller.client
        if watch {
            try await watchTable(client)
            return
        }
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

    /// Redraws the table in place: home the cursor, print, clear what the last, longer frame left below. A
    /// controller that goes away is shown as such, and the watch goes on (it comes back after `fleet up`).
    private func watchTable(_ client: ControlClient) async throws {
        guard interval >= 0.1 else { throw failure("--interval must be at least 0.1 seconds", code: 2) }
        let interactive = isatty(STDOUT_FILENO) == 1
        if interactive { FileHandle.standardOutput.write(Data("\u{1B}[2J".utf8)) }  // clear once
        while !Task.isCancelled {
            var frame: String
            do {
                frame = StatusTable.render(try await client.status())
            } catch let error as ControlClient.Unauthorized {
                throw failure(error.description)
            } catch {
                frame = "\(error)"
            }
            let stamp = "every \(interval)s — \(Date().formatted(date: .omitted, time: .standard)) — Ctrl-C to stop"
            if interactive {
                // Home, then each line followed by clear-to-end-of-line, then clear everything below.
                let lines = ([stamp, ""] + frame.split(separator: "\n", omittingEmptySubsequences: false).map(String.init))
                    .map { $0 + "\u{1B}[K" }
                FileHandle.standardOutput.write(Data(("\u{1B}[H" + lines.joined(separator: "\n") + "\n\u{1B}[J").utf8))
            } else {
                say(stamp)
                say(frame)
            }
            try await Task.sleep(for: .seconds(interval))
        }
    }
}
