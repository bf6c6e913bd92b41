import ArgumentParser
import FleetClient
import FleetConfig
import FleetCore
import FleetServer
import FleetSupervision
import Foundation
import Logging

@main
struct Fleet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "Run a fleet of llama-server processes and route completions across them.",
        discussion: """
            Declare models in fleet.json (`fleet init DIR` writes one from the GGUF files under DIR), then \
            `fleet up`. `fleet status` shows every instance; `fleet down` stops them all. See docs/configuration.md \
            for every fleet.json key.
            """,
        version: FleetController.version,
        subcommands: [Init.self, Up.self, Status.self, Logs.self, Down.self, Restart.self, Swap.self, Reload.self, Complete.self, Chat.self, Bench.self, Models.self, Validate.self, Version.self]
    )

    static func main() async {
        SignalMask.unblockAll()
        await main(nil)
    }
}

/// Where a subcommand finds the controller: `--url`, or the `listen` address of `--config`.
struct ControllerOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "The fleet.json that names the controller's listen address.")
    var config: String = "fleet.json"

    @Option(help: "The controller's URL, e.g. http://127.0.0.1:8090 (overrides --config).")
    var url: String?

    @Option(name: .customLong("api-key"),
            help: "The key to send when the fleet has apiKeys (default: FLEET_API_KEY, then the keys of --config).")
    var apiKey: String?

    var baseURL: String { ControlClient.baseURL(url: url, configPath: config) }
    var key: String? { ControlClient.apiKey(explicit: apiKey, configPath: config) }

    var client: ControlClient {
        ControlClient(baseURL: baseURL, apiKey: key)
    }
}

/// Prints an actionable error to standard error and returns the exit code to throw.
func failure(_ message: String, code: Int32 = 1) -> ExitCode {
    FileHandle.standardError.write(Data(("error: " + message + "\n").utf8))
    return ExitCode(code)
}

func bootstrapLogging(level: Logger.Level) {
    LoggingSystem.bootstrap { label in StandardErrorLogHandler(label: label, level: level) }
}

/// Prints a line to standard output at once (progress must show while models load, even through a pipe).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// Parses `--log-level`.
func parseLogLevel(_ text: String?, default fallback: Logger.Level) throws -> Logger.Level {
    guard let text else { return fallback }
    guard let level = Logger.Level(rawValue: text.lowercased()) else {
        throw failure("unknown log level \"\(text)\": use one of " + Logger.Level.allCases.map(\.rawValue).joined(separator: ", "), code: 2)
    }
    return level
}
