import ArgumentParser
import FleetClient
import FleetConfig
import FleetCore
import FleetServer
import FleetSupervision
import Foundation

struct Models: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the configured models and the GGUF files under folders, with what their headers say.",
        discussion: """
            For each model: architecture, parameters, quantization, file size, trained context, the context an \
            instance runs with and the memory one instance is estimated to take at it. GGUF files are found under \
            each DIR recursively (symbolic links followed, hidden folders skipped); each one fleet.json does not run \
            yet comes with an entry to paste under "models". Files that look like models but cannot be used are \
            listed with why. `fleet init DIR` writes a whole fleet.json instead.
            """
    )

    @Option(name: .shortAndLong, help: "The fleet.json whose models to list (default: ./fleet.json, when it exists).")
    var config: String?

    @Flag(help: "Print JSON instead of tables, for scripts.")
    var json = false

    @Argument(help: ArgumentHelp("Folders (or GGUF files) to search for models.", valueName: "DIR"))
    var directories: [String] = []

    func run() async throws {
        let fleet = try loadConfig()
        if fleet == nil && directories.isEmpty {
            throw failure("no fleet.json here and no folder given: `fleet models DIR` lists the GGUF files under DIR, "
                          + "`fleet init DIR` writes a fleet.json for them, --config PATH names another fleet.json", code: 2)
        }
        for directory in directories where !FileManager.default.fileExists(atPath: directory) {
            throw failure("\(directory) does not exist: give the folders that hold your .gguf files", code: 2)
        }
        let configured = (fleet?.models ?? []).map(ConfiguredModel.init)
        let discovery = ModelDiscovery.scan(directories, configured: fleet?.models ?? [])
        // Entries are written as they would be in the fleet.json that gets them: paths relative to its folder.
        let base = fleet.map { URL(fileURLWithPath: $0.source).standardizedFileURL.deletingLastPathComponent().path }
            ?? FileManager.default.currentDirectoryPath
        if json {
            say(try renderJSON(fleet: fleet, configured: configured, discovery: discovery, base: base))
        } else {
            render(fleet: fleet, configured: configured, discovery: discovery, base: base).forEach(say)
        }
    }

    /// `--config`, or ./fleet.json when it exists. Model files are not checked here: a missing one is shown in
    /// the list, with the fix.
    private func loadConfig() throws -> FleetConfig? {
        let file = config ?? "fleet.json"
        guard config != nil || FileManager.default.fileExists(atPath: file) else { return nil }
        do {
            return try FleetConfig.load(file: file, checkFiles: false)
        } catch {
            throw failure(error.description, code: 2)
        }
    }

    // MARK: - Text

    private func render(fleet: FleetConfig?, configured: [ConfiguredModel], discovery: ModelDiscovery, base: String) -> [String] {
        var lines: [String] = []
        if let fleet {
            lines.append("\(fleet.source): \(plural(configured.count, "model"))")
            var rows: [[String]] = []
            var problems: [String] = []
            for model in configured {
                let config = model.config
                var notes: [String] = []
                if config.replicas != 1 { notes.append("× \(config.replicas) replicas") }
                if config.memory != nil { notes.append("memory set in fleet.json") }
                if config.path.isEmpty {
                    notes.append("remote: " + config.endpoints.joined(separator: ", "))
                    rows.append(row(name: config.name, path: "-", metadata: nil, context: nil, memory: nil, notes: notes))
                    continue
                }
                if let problem = model.problem { problems.append("  \(config.name): \(problem)") }
                rows.append(row(name: config.name, path: display(config.path), metadata: model.metadata,
                                context: model.context, memory: model.memoryPerInstance, notes: notes))
            }
            lines += table(rows)
            lines += problems
        }
        for directory in directories {
            let root = FleetConfig.resolve(directory, against: FileManager.default.currentDirectoryPath)
            let here = discovery.found.filter { $0.path == root || $0.path.hasPrefix(root == "/" ? "/" : root + "/") }
            if !lines.isEmpty { lines.append("") }
            guard !here.isEmpty else {
                lines.append("under \(directory): no GGUF files (scripts/fetch-model.sh fetches a small model)")
                continue
            }
            lines.append("under \(directory): \(plural(here.count, "GGUF file"))")
            lines += table(here.map { found in
                var notes: [String] = []
                if let name = found.configuredAs { notes.append("configured as \(name)") }
                if found.parts > 1 { notes.append("\(found.parts) parts") }
                return row(name: found.name, path: display(found.path), metadata: found.metadata, context: found.contextSize,
                           memory: found.memoryPerInstance, notes: notes)
            })
        }
        // Every new model once, even when two folders overlap.
        let new = discovery.found.filter { $0.configuredAs == nil }
        if !new.isEmpty {
            lines.append("")
            lines.append(fleet.map { "to run them, add under \"models\" in \($0.source):" }
                         ?? "to run them, put under \"models\" in a fleet.json here (or let `fleet init` write one):")
            lines.append(new.map { "  " + snippet($0, base: base) }.joined(separator: ",\n"))
        }
        if !discovery.skipped.isEmpty {
            lines.append("")
            lines.append("skipped:")
            lines += discovery.skipped.map { "  \(display($0.path)): \($0.reason)" }
        }
        return lines
    }

    private func row(name: String, path: String, metadata: GGUFMetadata?, context: Int?, memory: Int?,
                     notes: [String]) -> [String] {
        [name, path, metadata?.architecture ?? "-", metadata?.parameterLabel ?? "-", metadata?.quantization ?? "-",
         metadata?.fileSize.formattedBytes ?? "-", metadata?.contextLength.map(String.init) ?? "-",
         context.map(String.init) ?? "-", memory.map { "~" + $0.formattedBytes } ?? "-", notes.joined(separator: ", ")]
    }

    /// Columns padded to their widest cell, two spaces apart, under a header.
    private func table(_ rows: [[String]]) -> [String] {
        let header = ["NAME", "FILE", "ARCH", "PARAMS", "QUANT", "SIZE", "TRAINED", "CONTEXT", "MEMORY", ""]
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
    }

    /// A path relative to the current folder when it is inside it: shorter, and what the user typed.
    private func display(_ path: String) -> String {
        ConfigSnippet.path(path, relativeTo: FileManager.default.currentDirectoryPath)
    }

    private func snippet(_ found: ModelDiscovery.Found, base: String) -> String {
        ConfigSnippet.model(name: found.name, path: found.path, contextSize: found.contextSize, relativeTo: base)
    }

    private func plural(_ count: Int, _ noun: String) -> String { "\(count) \(noun)\(count == 1 ? "" : "s")" }

    // MARK: - JSON

    private func renderJSON(fleet: FleetConfig?, configured: [ConfiguredModel], discovery: ModelDiscovery,
                            base: String) throws -> String {
        struct Configured: Encodable {
            var name: String
            var path: String
            var replicas: Int
            var contextSize: Int?
            var memoryPerInstance: Int?
            var metadata: GGUFMetadata?
            var problem: String?
        }
        struct Found: Encodable {
            var name: String
            var path: String
            var parts: Int
            var configuredAs: String?
            var contextSize: Int
            var memoryPerInstance: Int
            var metadata: GGUFMetadata
            var snippet: String?
        }
        struct Skipped: Encodable {
            var path: String
            var reason: String
        }
        struct Report: Encodable {
            var config: String?
            var configured: [Configured]
            var found: [Found]
            var skipped: [Skipped]
        }
        let report = Report(
            config: fleet.map { URL(fileURLWithPath: $0.source).standardizedFileURL.path },
            configured: configured.map {
                Configured(name: $0.config.name, path: $0.config.path, replicas: $0.config.replicas, contextSize: $0.context,
                           memoryPerInstance: $0.memoryPerInstance, metadata: $0.metadata, problem: $0.problem)
            },
            found: discovery.found.map {
                Found(name: $0.name, path: $0.path, parts: $0.parts, configuredAs: $0.configuredAs, contextSize: $0.contextSize,
                      memoryPerInstance: $0.memoryPerInstance, metadata: $0.metadata,
                      snippet: $0.configuredAs == nil ? snippet($0, base: base) : nil)
            },
            skipped: discovery.skipped.map { Skipped(path: $0.path, reason: $0.reason) })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(report), as: UTF8.self)
    }
}

/// A model of fleet.json with what its GGUF header says, or why it cannot be read.
private struct ConfiguredModel {
    var config: ModelConfig
    var metadata: GGUFMetadata?
    /// The context an instance runs with: `contextSize`, else the trained context (llama-server's default).
    var context: Int?
    /// `memory` from fleet.json, else the estimate at `context`.
    var memoryPerInstance: Int?
    var problem: String?

    init(_ config: ModelConfig) {
        self.config = config
        guard !config.path.isEmpty else { return }
        if let problem = GGUFFile.problem(at: config.path) {
            self.problem = "\(problem.message) (fix: \(problem.fix))"
            memoryPerInstance = config.memory
            return
        }
        do {
            let metadata = try GGUFMetadata.read(path: config.path)
            let estimate = MemoryEstimate(metadata: metadata, contextSize: config.contextSize)
            self.metadata = metadata
            context = estimate.contextSize
            memoryPerInstance = config.memory ?? estimate.total
        } catch {
            problem = "its header cannot be read: \(error.detail)"
            memoryPerInstance = config.memory
        }
    }
}
