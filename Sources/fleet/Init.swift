import ArgumentParser
import FleetClient
import FleetConfig
import FleetCore
import FleetServer
import FleetSupervision
import Foundation

struct Init: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a starter fleet.json that runs every GGUF model under a folder.",
        discussion: """
            Searches DIR recursively for GGUF files (as `fleet models DIR` does) and writes a fleet.json with one \
            model each: named after its file, one replica, its trained context up to 4096. Paths inside the new \
            file's folder are written relative to it. An existing file is never replaced without --force.
            """
    )

    @Argument(help: ArgumentHelp("The folder to search for GGUF models.", valueName: "DIR"))
    var directory: String = "."

    @Option(name: .shortAndLong, help: "Where to write the file (a folder gets a fleet.json inside it).")
    var output: String = "fleet.json"

    @Flag(help: "Replace the file if it exists.")
    var force = false

    func run() async throws {
        let workingDirectory = FileManager.default.currentDirectoryPath
        var target = FleetConfig.resolve(output, against: workingDirectory)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: target, isDirectory: &isDirectory), isDirectory.boolValue {
            target += "/fleet.json"
        }
        if FileManager.default.fileExists(atPath: target) && !force {
            throw failure("\(ConfigSnippet.path(target, relativeTo: workingDirectory)) already exists: --force replaces it, --output PATH writes elsewhere, "
                          + "and `fleet models \(directory)` prints entries to paste into it")
        }
        let root = FleetConfig.resolve(directory, against: workingDirectory)
        guard FileManager.default.fileExists(atPath: root) else {
            throw failure("\(directory) does not exist: give the folder that holds your .gguf models, e.g. `fleet init models`", code: 2)
        }

        let discovery = ModelDiscovery.scan([root])
        for skipped in discovery.skipped {
            say("skipped \(ConfigSnippet.path(skipped.path, relativeTo: workingDirectory)): \(skipped.reason)")
        }
        guard !discovery.found.isEmpty else {
            let searched = discovery.directoriesSearched == 1 ? "1 folder" : "\(discovery.directoriesSearched) folders"
            throw failure("no GGUF model under \(root) (searched \(searched)\(discovery.skipped.isEmpty ? "" : "; the files above were skipped")): "
                          + "put .gguf files there or name the folder that has them (`fleet init path/to/models`); "
                          + "scripts/fetch-model.sh fetches a small one (Gemma 3 270M)")
        }

        let folder = (target as NSString).deletingLastPathComponent
        let schema = ConfigSnippet.schemaReference(schemaFile: ConfigSnippet.locateSchema(executable: ProcessProbe.currentExecutable),
                                                   outputDirectory: folder)
        let text = ConfigSnippet.starterFile(models: discovery.found, directory: folder, schema: schema)
        do {
            // The file must be one `fleet up` accepts; checked before anything is written.
            _ = try FleetConfig.decode(Data(text.utf8), source: target, baseDirectory: folder)
        } catch {
            throw failure("the fleet.json fleet would write is not valid, which is a bug in fleet (please report it):\n\(error.description)")
        }
        do {
            try text.write(toFile: target, atomically: true, encoding: .utf8)
        } catch {
            throw failure("cannot write \(target) (\(error.localizedDescription)): check that its folder exists and is writable, or pass --output PATH")
        }

        let written = ConfigSnippet.path(target, relativeTo: workingDirectory)
        say("wrote \(written): \(discovery.found.count) model\(discovery.found.count == 1 ? "" : "s"), one replica each")
        for model in discovery.found {
            let details = [model.metadata.architecture, model.metadata.parameterLabel, model.metadata.quantization]
                .compactMap { $0 }.joined(separator: ", ")
            say("  \(model.name): \(ConfigSnippet.path(model.path, relativeTo: folder)) (\(details); "
                + "~\(model.memoryPerInstance.formattedBytes) per instance at context \(model.contextSize))")
        }
        let config = written == "fleet.json" ? "" : " --config \(written)"
        say("next: `fleet up\(config)` runs it; `fleet validate\(config)` checks it after edits (every key: docs/configuration.md)")
    }
}
