import Foundation
import FleetTestSupport
import Testing
@testable import FleetConfig
@testable import FleetSupervision

@Suite("llama-server command line and location")
struct LlamaServerCommandTests {
    @Test func commandCarriesTheModelSettingsAndBindsLoopback() {
        var model = ModelConfig(name: "m", path: "/m.gguf")
        model.contextSize = 2048
        model.gpuLayers = -1
        model.threads = 2
        model.parallel = 4
        model.batchSize = 256
        model.flashAttention = .off
        model.args = ["--seed", "1"]
        model.env = ["A": "b"]
        let command = LlamaServerCommand(executable: "/bin/llama-server", model: model, port: 8123)
        #expect(command.arguments == ["--model", "/m.gguf", "--host", "127.0.0.1", "--port", "8123", "--alias", "m",
                                      "--ctx-size", "2048", "--n-gpu-layers", "auto", "--threads", "2", "--parallel", "4",
                                      "--batch-size", "256", "--flash-attn", "off", "--seed", "1"])
        #expect(command.environment == ["A": "b"])
    }

    @Test func locatorPrefersConfigThenEnvironmentThenPath() {
        let env = ["FLEET_LLAMA_SERVER": "/a/llama-server", "LLAMACPP_EXECUTABLE": "/b/llama-server", "PATH": "/c:/d",
                   "HOME": "/nonexistent"]
        #expect(LlamaServerLocator.candidates(configured: "/x", environment: env, workingDirectory: "/w") == ["/x"])
        let list = LlamaServerLocator.candidates(configured: nil, environment: env, workingDirectory: "/w")
        #expect(Array(list.prefix(4)) == ["/a/llama-server", "/b/llama-server", "/c/llama-server", "/d/llama-server"])
        #expect(list.contains("/w/build/bin/llama-server"))
    }

    @Test func locatorSaysHowToInstallWhenNothingIsFound() {
        #expect {
            try LlamaServerLocator.locate(configured: nil, environment: ["PATH": "/nonexistent", "HOME": "/nonexistent"],
                                          workingDirectory: "/nonexistent")
        } throws: { "\($0)".contains("scripts/install-llama-server.sh") }
    }
}
