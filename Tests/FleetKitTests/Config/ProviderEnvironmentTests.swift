import FleetTestSupport
import Foundation
import NIOCore
import Testing
@testable import FleetConfig
@testable import FleetSupervision

/// What the llama.cpp provider's users set (`LLAMACPP_*`) works here as it did there.
@Suite("the llama.cpp provider's environment")
struct ProviderEnvironmentTests {
    let directory = temporaryDirectory()

    @Test func everyVariableIsRead() {
        let provider = ProviderEnvironment(["LLAMACPP_ENABLED": "false", "LLAMACPP_MODEL_PATH": "/m/x.gguf",
                                            "LLAMACPP_API_URL": "http://127.0.0.1:8080/", "LLAMACPP_CONTEXT_SIZE": "2048",
                                            "LLAMACPP_GPU_LAYERS": "12"])
        #expect(!provider.enabled && provider.modelPath == "/m/x.gguf" && provider.apiURL == "http://127.0.0.1:8080")
        #expect(provider.contextSize == 2048 && provider.gpuLayers == 12 && provider.problems.isEmpty)
    }

    @Test(arguments: [("0", false), ("off", false), ("FALSE", false), ("no", false), ("true", true), ("1", true), ("", true)])
    func enabledReadsAsPeopleWriteIt(value: String, enabled: Bool) {
        #expect(ProviderEnvironment(["LLAMACPP_ENABLED": value]).enabled == enabled)
    }

    @Test func unusableValuesAreProblemsThatNameTheVariable() {
        let provider = ProviderEnvironment(["LLAMACPP_ENABLED": "maybe", "LLAMACPP_API_URL": "localhost:8080",
                                            "LLAMACPP_CONTEXT_SIZE": "4k", "LLAMACPP_GPU_LAYERS": "-5"])
        #expect(provider.problems.map(\.path) == ["LLAMACPP_ENABLED", "LLAMACPP_API_URL", "LLAMACPP_CONTEXT_SIZE", "LLAMACPP_GPU_LAYERS"])
        #expect(provider.problems.allSatisfy { !$0.fix.isEmpty })
    }

    @Test func theZeroConfigModelRunsAsTheProviderRanIt() throws {
        let path = fakeGGUF(in: directory, name: "solo.gguf")
        let plain = try FleetConfig.singleModel(path: path, environment: ProviderEnvironment([:])).models[0]
        #expect(plain.contextSize == 4096 && plain.gpuLayers == 999 && plain.batchSize == 512 && plain.endpoints.isEmpty)
        let command = LlamaServerCommand(executable: "llama-server", model: plain, port: 8100).arguments
        #expect(command.joined(separator: " ").contains("--ctx-size 4096 --n-gpu-layers 999"))

        let set = ProviderEnvironment(["LLAMACPP_CONTEXT_SIZE": "2048", "LLAMACPP_GPU_LAYERS": "0",
                                       "LLAMACPP_API_URL": "http://127.0.0.1:8080"])
        let model = try FleetConfig.singleModel(path: path, environment: set).models[0]
        #expect(model.contextSize == 2048 && model.gpuLayers == 0 && model.endpoints == ["http://127.0.0.1:8080"])
    }

    @Test func aRunningServerAloneIsServedAsDefault() throws {
        let config = try #require(try FleetConfig.fromEnvironment(ProviderEnvironment(["LLAMACPP_API_URL": "http://10.0.0.5:8080"])))
        #expect(config.models.map(\.name) == ["default"] && config.models[0].replicas == 0)
        #expect(config.models[0].endpoints == ["http://10.0.0.5:8080"])
        #expect(try FleetConfig.fromEnvironment(ProviderEnvironment([:])) == nil)
    }

    @Test func fleetJSONWinsOverTheEnvironment() throws {
        _ = fakeGGUF(in: directory)
        let json = #"{ "models": { "set": { "path": "model.gguf", "contextSize": 8192 }, "unset": { "path": "model.gguf" } } }"#
        let config = try FleetConfig.decode(Data(json.utf8), source: "test", baseDirectory: directory,
                                            environment: ProviderEnvironment(["LLAMACPP_CONTEXT_SIZE": "2048", "LLAMACPP_GPU_LAYERS": "7"]))
        let byName = Dictionary(uniqueKeysWithValues: config.models.map { ($0.name, $0) })
        #expect(byName["set"]?.contextSize == 8192 && byName["set"]?.gpuLayers == 7)
        #expect(byName["unset"]?.contextSize == 2048 && byName["unset"]?.gpuLayers == 7)
    }
}
