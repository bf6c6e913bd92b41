import ArgumentParser
import FleetClient
import FleetConfig
import FleetCore
import FleetServer
import FleetSupervision
import Foundation

struct Validate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a fleet.json and print every problem in it.",
        discussion: """
            Exits with status 2 when the file (or an LLAMACPP_* variable) has problems, 0 when it is ready for
            `fleet up`. Shows each model's context size and GPU layers as they will run, and where each value
            comes from: fleet.json, the environment (LLAMACPP_CONTEXT_SIZE, LLAMACPP_GPU_LAYERS), or
            llama-server's own default.
            """
    )

    @Option(name: .shortAndLong, help: "The fleet.json to check.")
    var config: String = "fleet.json"

    func run() async throws {
        let provider = ProviderEnvironment()
        if !provider.problems.isEmpty {
            FileHandle.standardError.write(Data(("the environment has values fleet cannot use:\n"
                + provider.problems.map { "  \($0)\n" }.joined()).utf8))
            throw ExitCode(2)
        }
        let fleet: FleetConfig
        let asWritten: FleetConfig
        do {
            fleet = try FleetConfig.load(file: config, environment: provider)
            asWritten = try FleetConfig.load(file: config, environment: ProviderEnvironment([:]))
        } catch {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode(2)
        }
        let instances = fleet.models.reduce(0) { $0 + $1.replicas }
        say("\(config): OK — \(fleet.models.count) model(s), \(instances) instance(s), listening on \(fleet.listen)")
        for peer in fleet.peers {
            say("  peer \(peer.url)\(peer.apiKey == nil ? "" : " (with its key)"): its models are read from its /v1/models when fleet starts")
        }
        for (model, written) in zip(fleet.models, asWritten.models) {
            let aliases = model.aliases.isEmpty ? "" : " (aliases: \(model.aliases.joined(separator: ", ")))"
            var remote = model.endpoints.map { "endpoint \($0)" } + model.discover.map { "discovers \($0)" }
            if !model.path.isEmpty { remote.insert(model.path, at: 0) }
            say("  \(model.name)\(aliases): \(model.replicas) × \(remote.joined(separator: ", "))")
            guard model.replicas > 0 else { continue }
            func origin(_ value: Int?, _ writtenValue: Int?) -> String {
                guard let value else { return "llama-server's default" }
                return "\(value) (" + (writtenValue != nil ? "fleet.json" : "environment") + ")"
            }
            say("    contextSize \(origin(model.contextSize, written.contextSize)), gpuLayers \(origin(model.gpuLayers, written.gpuLayers))")
            // What the GGUF is for, against how it is run: an embedding model or a reranker needs its flag.
            if let metadata = try? GGUFMetadata.read(path: model.path) {
                if metadata.isEmbeddingModel && !model.servesEmbeddings {
                    say("warning: models.\(model.name): the GGUF is an embedding model (pooling type \(metadata.poolingType ?? 0)) but runs without --embeddings, so /v1/embeddings is refused: add \"args\": [\"--embeddings\"]")
                }
                if metadata.isReranker && !model.servesReranking {
                    say("warning: models.\(model.name): the GGUF is a reranker but runs without --reranking, so /v1/rerank is refused: add \"args\": [\"--reranking\"]")
                }
            }
        }
        if !provider.described.isEmpty {
            say("environment: " + provider.described.joined(separator: ", "))
        }
        if !provider.enabled {
            say("warning: LLAMACPP_ENABLED=false: `fleet up` will refuse to start in this environment")
        }
        do {
            let server = try LlamaServerLocator.locate(configured: fleet.llamaServer)
            let version = await LlamaServerVersion.of(executable: server)
            say("llama-server: \(server)" + (version.map { ", \($0)" } ?? ", version unknown"))
            if let refusal = LlamaServerVersion.refusal(version, executable: server) { say("warning: \(refusal)") }
        } catch {
            say("warning: \(error.description)")
        }
    }
}
