import FleetTestSupport
import Foundation
import NIOCore
import Testing
@testable import FleetClient
@testable import FleetCore

/// The variables on the command line, as the provider's users set them.
@Suite("fleet command line: LLAMACPP_* variables", .timeLimit(.minutes(2)))
struct ProviderCommandLineTests {
    let directory = temporaryDirectory()
    let listenPort = TestPorts.block(1).lowerBound

    @Test func disabledRefusesToStartAndSaysWhy() async throws {
        let model = fakeGGUF(in: directory, name: "solo.gguf")
        let up = try await runCommand(Products.fleet, ["up", "--detach", "--model", model, "--listen", "127.0.0.1:\(listenPort)"],
                                      environment: ["FLEET_LLAMA_SERVER": Products.fakeServer, "LLAMACPP_ENABLED": "false"],
                                      directory: directory)
        #expect(up.code == 2)
        #expect(up.output.contains("LLAMACPP_ENABLED is false") && up.output.contains("unset it"), "\(up.output)")
        #expect(processes(matching: model).isEmpty)
    }

    @Test func theEnvironmentAloneRunsAModelBesideARunningServer() async throws {
        let (endpoint, endpointURL) = try await startFakeEndpoint([])
        defer { endpoint.terminate() }
        let model = fakeGGUF(in: directory, name: "solo.gguf")
        let environment = ["FLEET_LLAMA_SERVER": Products.fakeServer, "LLAMACPP_MODEL_PATH": model,
                           "LLAMACPP_API_URL": endpointURL, "LLAMACPP_CONTEXT_SIZE": "2048"]
        let up = try await runCommand(Products.fleet, ["up", "--detach", "--listen", "127.0.0.1:\(listenPort)"],
                                      environment: environment, directory: directory)
        defer { _ = try? runCommandBlocking(Products.fleet, ["down", "--url", "http://127.0.0.1:\(listenPort)"]) }
        #expect(up.code == 0, "\(up.output)")
        let control = ControlClient(baseURL: "http://127.0.0.1:\(listenPort)")
        try await eventually("both serve") {
            let instances = try await control.status().instances
            return instances.count == 2 && instances.allSatisfy { $0.state == .ready }
        }
        let status = try await control.status()
        #expect(status.models.map(\.name) == ["solo"] && status.models[0].endpoints == [endpointURL])
        #expect(status.controller.llamaServerVersion?.build == 99999, "the version is in /status")
        let log = try String(contentsOfFile: try #require(status.instances.first { $0.managed }?.logFile), encoding: .utf8)
        #expect(log.contains("--ctx-size 2048 --n-gpu-layers 999") && log.contains("--batch-size 512"),
                "the provider's defaults, LLAMACPP_CONTEXT_SIZE over them: \(log.prefix(400))")
        let table = try await runCommand(Products.fleet, ["status", "--url", "http://127.0.0.1:\(listenPort)"])
        #expect(table.output.contains("llama-server: \(Products.fakeServer), b99999"), "\(table.output)")
    }

    @Test func validateShowsTheValuesInForceAndWhereTheyCameFrom() async throws {
        _ = fakeGGUF(in: directory)
        let config = directory + "/fleet.json"
        try #"{ "llamaServer": "\#(Products.fakeServer)", "models": { "a": { "path": "model.gguf", "contextSize": 8192 }, "b": { "path": "model.gguf" } } }"#
            .write(toFile: config, atomically: true, encoding: .utf8)
        let validate = try await runCommand(Products.fleet, ["validate", "--config", config], environment: ["LLAMACPP_GPU_LAYERS": "20"])
        #expect(validate.code == 0, "\(validate.output)")
        #expect(validate.output.contains("contextSize 8192 (fleet.json), gpuLayers 20 (environment)"), "\(validate.output)")
        #expect(validate.output.contains("contextSize llama-server's default, gpuLayers 20 (environment)"))
        #expect(validate.output.contains("llama-server: \(Products.fakeServer), b99999"))

        let bad = try await runCommand(Products.fleet, ["validate", "--config", config], environment: ["LLAMACPP_CONTEXT_SIZE": "lots"])
        #expect(bad.code == 2 && bad.output.contains("LLAMACPP_CONTEXT_SIZE"), "\(bad.output)")

        let version = try await runCommand(Products.fleet, ["version", "--config", config])
        #expect(version.output.contains("llama-server: \(Products.fakeServer), b99999 (commit fake-llama-server"), "fleet version honours llamaServer: \(version.output)")
    }

    @Test func validateWarnsWhenAnEmbeddingModelOrARerankerRunsWithoutItsFlag() async throws {
        var embedder = GGUFBuilder.llama()
        embedder.metadata.append(("llama.pooling_type", .u32(1)))
        embedder.write(to: directory + "/embed.gguf")
        var reranker = GGUFBuilder.llama()
        reranker.metadata.append(("llama.pooling_type", .u32(4)))
        reranker.write(to: directory + "/rerank.gguf")
        let config = directory + "/fleet.json"
        try #"{ "llamaServer": "\#(Products.fakeServer)", "models": { "e": { "path": "embed.gguf" }, "r": { "path": "rerank.gguf" }, "ok": { "path": "embed.gguf", "args": ["--embeddings"] } } }"#
            .write(toFile: config, atomically: true, encoding: .utf8)
        let validate = try await runCommand(Products.fleet, ["validate", "--config", config])
        #expect(validate.code == 0, "warnings, not errors: \(validate.output)")
        #expect(validate.output.contains("warning: models.e: the GGUF is an embedding model"), "\(validate.output)")
        #expect(validate.output.contains("warning: models.r: the GGUF is a reranker"), "\(validate.output)")
        #expect(!validate.output.contains("warning: models.ok"), "\(validate.output)")
    }
}
