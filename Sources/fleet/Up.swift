import ArgumentParser
import FleetClient
import FleetConfig
import FleetCore
import FleetServer
import FleetSupervision
import Foundation
import Logging

struct Up: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start every instance of the fleet and supervise them.",
        discussion: """
            Runs in the foreground, printing each instance's progress, until SIGINT or SIGTERM (or `fleet down`)
            stops everything. With --detach it starts in the background and returns once every instance is ready,
            or failed (with why).

            Without a fleet.json, `fleet up --model path/to/model.gguf` (or LLAMACPP_MODEL_PATH) runs one model
            with a 4096-token context (LLAMACPP_CONTEXT_SIZE), every layer on the GPU (LLAMACPP_GPU_LAYERS) and
            batches of 512; LLAMACPP_API_URL adds an already-running llama-server to its pool (or, alone, serves
            it as model "default"). LLAMACPP_ENABLED=false refuses to start.
            """
    )

    @Option(name: .shortAndLong, help: "The fleet.json to run.")
    var config: String = "fleet.json"

    @Option(name: .shortAndLong, help: "Run this one GGUF model without a fleet.json.")
    var model: String?

    @Option(help: "Listen on this host:port instead of fleet.json's \"listen\" (e.g. 127.0.0.1:9000).")
    var listen: String?

    @Flag(help: "Start in the background; return once all instances are ready or failed.")
    var detach = false

    @Flag(help: "Listen beyond loopback without apiKeys (only on a network you trust).")
    var allowUnauthenticated = false

    @Option(help: "Log level for the controller's own log (trace, debug, info, notice, warning, error, critical).")
    var logLevel: String?

    func run() async throws {
        let provider = ProviderEnvironment()
        guard provider.enabled else {
            throw failure("LLAMACPP_ENABLED is false in this environment, which switches the llama.cpp provider off, so fleet starts nothing; unset it (or set it to true) to run the fleet", code: 2)
        }
        guard provider.problems.isEmpty else {
            throw failure("the environment has values fleet cannot use:\n" + provider.problems.map { "  \($0)" }.joined(separator: "\n"), code: 2)
        }
        var config: FleetConfig
        do {
            config = try loadConfig(provider)
        } catch {
            throw failure(error.description, code: 2)
        }
        if let listen {
            guard let address = ListenAddress(parsing: listen) else {
                throw failure("--listen \"\(listen)\" is not host:port; write it like 127.0.0.1:9000", code: 2)
            }
            config.listen = address
        }
        do {
            try config.checkExposure(keys: config.keysInForce(), allowUnauthenticated: allowUnauthenticated)
        } catch {
            throw failure(error.description, code: 2)
        }
        let executable: String
        do {
            executable = try LlamaServerLocator.locate(configured: config.llamaServer)
        } catch where !config.models.contains(where: { $0.replicas > 0 }) {
            // A fleet of endpoints only (a front for other hosts or fleets) runs no llama-server of its own; a
            // reload that adds a local model then reports the missing executable on that model's instances.
            executable = config.llamaServer ?? "llama-server"
        } catch {
            throw failure(error.description)
        }
        let version = await LlamaServerVersion.of(executable: executable)
        if let refusal = LlamaServerVersion.refusal(version, executable: executable) {
            throw failure(refusal)
        }
        if detach {
            try await runDetached(config)
            return
        }
        try await runInForeground(config, executable: executable, version: version)
    }

    private func runInForeground(_ config: FleetConfig, executable: String, version: LlamaServerVersion?) async throws {
        bootstrapLogging(level: try parseLogLevel(logLevel, default: .warning))
        let logger = Logger(label: "fleet")
        // Instance events, and a tick a second for the loading lines, through one stream to one printer.
        let (inputs, sink) = AsyncStream<ProgressInput>.makeStream()
        let controller = FleetController(config: config, executable: executable, logger: logger,
                                         allowUnauthenticated: allowUnauthenticated, observe: { sink.yield(.event($0)) })
        // On-demand models start with their first request: the ready summary does not wait for them.
        let total = config.models.filter { !$0.startOnDemand }.reduce(0) { $0 + $1.replicas }
        let logs = config.stateDirectory + "/logs"
        let printer = Task {
            var progress = UpProgress(total: total, url: config.listen.url)
            for await input in inputs {
                switch input {
                case .event(let event): progress.handle(event).forEach(say)
                case .tick: progress.tick { Self.lastLogLine(logs, $0) }.forEach(say)
                }
            }
        }
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                sink.yield(.tick)
            }
        }
        defer { ticker.cancel() }
        say("fleet \(FleetController.version): \(total) instance(s) of \(config.models.count) model(s) from \(config.source)")
        say("llama-server: \(executable)" + (version.map { " (\($0))" } ?? " (its version is unknown: `\(executable) --version` did not say)"))
        do {
            try await controller.run {
                say("status: \(config.listen.url)/status — logs in \(config.stateDirectory)/logs")
            }
        } catch let error as FleetController.ListenAddressInUse {
            throw failure(error.description)
        } catch {
            throw failure("\(error)")
        }
        sink.finish()
        await printer.value
        say("fleet stopped: every instance is down")
    }

    enum ProgressInput: Sendable {
        case event(InstanceEvent)
        case tick
    }

    /// The last line an instance wrote, from its log file (for the loading lines).
    static func lastLogLine(_ directory: String, _ id: InstanceID) -> String? {
        LogFile.tail(path: "\(directory)/\(id.fileName).log", lines: 1)?.lines.last
    }

    private func loadConfig(_ provider: ProviderEnvironment) throws(ConfigError) -> FleetConfig {
        if let model { return try FleetConfig.singleModel(path: model, environment: provider) }
        if !FileManager.default.fileExists(atPath: config), let zeroConfig = try FleetConfig.fromEnvironment(provider) {
            return zeroConfig
        }
        return try FleetConfig.load(file: config, environment: provider)
    }

    /// Starts `fleet up` again in the background and follows it through `/status` until it has settled.
    private func runDetached(_ config: FleetConfig) async throws {
        let level = try parseLogLevel(logLevel, default: .info).rawValue
        var arguments = ["up", "--log-level", level]
        if let listen { arguments += ["--listen", listen] }
        if allowUnauthenticated { arguments.append("--allow-unauthenticated") }
        if let model {
            arguments += ["--model", URL(fileURLWithPath: model).standardizedFileURL.path]
        } else {
            arguments += ["--config", URL(fileURLWithPath: self.config).standardizedFileURL.path]
            let provider = ProviderEnvironment()
            if provider.modelPath != nil || provider.apiURL != nil, !FileManager.default.fileExists(atPath: self.config) {
                arguments = ["up", "--log-level", level] + (listen.map { ["--listen", $0] } ?? [])
                    + (allowUnauthenticated ? ["--allow-unauthenticated"] : [])
            }
        }
        let logFile = "\(config.stateDirectory)/controller.log"
        let pid: Int32
        do {
            pid = try DetachedLaunch.spawn(executable: ProcessProbe.currentExecutable, arguments: arguments, logFile: logFile)
        } catch {
            throw failure(error.description)
        }
        say("fleet \(FleetController.version): controller started in the background (pid \(pid)), log: \(logFile)")

        let keys = config.keysInForce()
        let client = ControlClient(baseURL: config.listen.url, apiKey: keys.admin.first ?? keys.user.first)
        let total = config.models.reduce(0) { $0 + $1.replicas }
        var progress = UpProgress(total: config.models.filter { !$0.startOnDemand }.reduce(0) { $0 + $1.replicas },
                                  url: config.listen.url)
        var seen: [String: InstanceState] = [:]
        let deadline = ContinuousClock.now + config.healthCheck.startupTimeout * Double(2) + .seconds(30)
        while ContinuousClock.now < deadline {
            if DetachedLaunch.hasExited(pid) {
                let tail = (try? String(contentsOfFile: logFile, encoding: .utf8))?
                    .split(separator: "\n").suffix(15).joined(separator: "\n") ?? ""
                throw failure("the background controller exited during startup; the end of \(logFile):\n\(tail)")
            }
            if let status = try? await client.status(), status.controller.pid == pid {
                // Endpoints (llama-servers fleet does not run) are in status too; startup waits for fleet's own.
                let instances = status.instances.filter(\.managed)
                for instance in instances where seen[instance.id] != instance.state {
                    var event = InstanceEvent(
                        id: InstanceID(model: instance.model, replica: instance.replica),
                        previous: seen[instance.id] ?? .stopped, state: instance.state, port: instance.port,
                        pid: instance.pid, detail: instance.state == .ready ? nil : instance.lastError, sinceSpawn: nil)
                    if instance.state == .unhealthy || instance.state == .failed { event.output = instance.lastOutput ?? [] }
                    seen[instance.id] = instance.state
                    if instance.state == .idle {
                        say("\(instance.id.padding(toLength: 14, withPad: " ", startingAt: 0)) idle      — starts on its first request")
                        continue
                    }
                    progress.handle(event).forEach(say)
                }
                let settled = instances.allSatisfy { [.ready, .failed, .idle].contains($0.state) }
                if settled && instances.count == total {
                    if instances.contains(where: { $0.state == .failed }) {
                        throw failure("some instances failed (the controller keeps running; `fleet status` shows why, `fleet down` stops it)")
                    }
                    return
                }
            }
            progress.tick { Self.lastLogLine(config.stateDirectory + "/logs", $0) }.forEach(say)
            try await Task.sleep(for: .milliseconds(200))
        }
        throw failure("the fleet is not ready yet; `fleet status` shows progress, `fleet down` stops it")
    }
}
