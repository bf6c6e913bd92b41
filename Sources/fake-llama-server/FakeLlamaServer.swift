import Foundation
import Hummingbird
import Logging
import UnixSignals

/// A stand-in for llama-server that fleet's tests start like the real one, with faults on cue
/// (`--fake-exit-at-start`, `--fake-crash-after`, `--fake-ignore-sigterm`, `--fake-unhealthy-after`, slow tokens).
/// It never replaces the real server in the end-to-end tests.
@main
enum FakeLlamaServer {
    static func main() async {
        if CommandLine.arguments.contains("--version") {
            // As llama-server prints it, with a build new enough for fleet.
            print("version: 0.0.0-fake (build 99999, commit fake-llama-server)\nbuilt with swiftc for tests")
            exit(0)
        }
        let options: FakeOptions
        do {
            options = try FakeOptions(arguments: Array(CommandLine.arguments.dropFirst()))
        } catch {
            FileHandle.standardError.write(Data("fake-llama-server: \(error)\n".utf8))
            exit(2)
        }
        if let code = options.exitAtStart {
            FileHandle.standardError.write(Data("fake: error: exiting at start on cue (code \(code))\n".utf8))
            exit(code)
        }
        if options.ignoreSigterm {
            signal(SIGTERM, SIG_IGN)
        }
        FileHandle.standardError.write(Data("fake: listening on \(options.host):\(options.port) as \(options.alias)\n".utf8))
        var logger = Logger(label: "fake-llama-server")
        logger.logLevel = .warning
        let server = FakeServer(options: options)
        let app = Application(router: server.routes(),
                              configuration: .init(address: .hostname(options.host, port: options.port), serverName: "fake-llama-server"),
                              logger: logger)
        do {
            try await app.runService(gracefulShutdownSignals: options.ignoreSigterm ? [.sigint] : [.sigterm, .sigint])
        } catch {
            FileHandle.standardError.write(Data("fake-llama-server: \(error)\n".utf8))
            exit(1)
        }
    }
}
