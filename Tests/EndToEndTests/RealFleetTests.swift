import FleetClient
import FleetConfig
import FleetCore
import FleetServer
import FleetSupervision
import FleetUpstream
import FleetTestSupport
import Foundation
import Testing

/// The real thing: `fleet` running the real llama-server on the real GGUF model. `scripts/test.sh` builds the
/// server and fetches the model, then passes them in `FLEET_LLAMA_SERVER` and `FLEET_TEST_MODEL`.
@Suite("end to end: real llama-server on a real model", .serialized, .timeLimit(.minutes(5)))
struct RealFleetTests {
    let directory = temporaryDirectory()
    let listenPort = TestPorts.block(1).lowerBound
    let portRange = TestPorts.block(20)

    func fleet(_ arguments: String...) async throws -> (code: Int32, output: String) {
        try await runCommand(Products.fleet, arguments)
    }

    /// One short real completion on an instance's own port.
    func complete(port: Int) async throws -> [String: Any] {
        let body = #"{"messages":[{"role":"user","content":"Name a colour."}],"max_tokens":8,"temperature":0}"#
        let response = try await UpstreamClient.with { client in
            try await client.fetch(UpstreamRequest(method: "POST", url: "http://127.0.0.1:\(port)/v1/chat/completions",
                                                   headers: [("Content-Type", "application/json")], body: Array(body.utf8),
                                                   totalTimeout: .seconds(60)))
        }
        #expect(response.status == 200, "\(response.bodyText)")
        return try #require(try JSONSerialization.jsonObject(with: Data(response.bodyText.utf8)) as? [String: Any])
    }

    /// A fleet.json for the real model: two replicas, one thread each, small context.
    func writeConfig(server: String, model: String) throws -> String {
        try writeFleet("fleet.json", server: server, extra: #""restart": { "initialDelay": "500ms" },"#, models: """
            "gemma": { "path": "\(model)", "replicas": 2, "contextSize": 1024, "gpuLayers": 0, "threads": 1,
                       "parallel": 1, "aliases": ["gemma-alias"] }
            """)
    }

    /// `file` in the test's directory: this test's listen address and ports, the real server, `models`.
    func writeFleet(_ file: String, server: String, extra: String = "", models: String) throws -> String {
        let config = directory + "/" + file
        try """
            {
              "listen": "127.0.0.1:\(listenPort)",
              "portRange": "\(portRange.lowerBound)-\(portRange.upperBound)",
              "llamaServer": "\(server)",
              "healthCheck": { "interval": "1s", "startupTimeout": "120s" }, \(extra)
              "models": { \(models) }
            }
            """.write(toFile: config, atomically: true, encoding: .utf8)
        return config
    }

    @Test func theOfficialOpenAIClientWorksThroughTheGatewayAndBothReplicasServe() async throws {
        let (server, model) = try realServerAndModel()
        let python = try #require(ProcessInfo.processInfo.environment["FLEET_OPENAI_PYTHON"],
                                  "FLEET_OPENAI_PYTHON is not set: run the tests with scripts/test.sh, which installs the openai client")
        let config = try writeConfig(server: server, model: model)
        let up = try await fleet("up", "--detach", "--config", config)
        #expect(up.code == 0, "\(up.output)")
        defer { _ = try? runCommandBlocking(Products.fleet, ["down", "--config", config]) }

        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("openai_client_check.py").path
        let check = try await runCommand(python, [script, "http://127.0.0.1:\(listenPort)", "gemma", "gemma-alias"])
        #expect(check.code == 0, "\(check.output)")
        let seen = try #require(try JSONSerialization.jsonObject(with: Data(check.output.utf8)) as? [String: Any], "\(check.output)")
        #expect((seen["pieces"] as? Int ?? 0) >= 2)
        // Requests with `tools` reach llama-server intact and come back as content or tool calls, both ways.
        #expect(seen["tools"] != nil && seen["streamedTools"] != nil, "\(check.output)")

        let status = try await ControlClient(baseURL: "http://127.0.0.1:\(listenPort)").status()
        let served = status.instances.map { $0.traffic?.served ?? 0 }
        #expect(served == [2, 2], "round-robin gave each replica two of the four requests: \(served)")
        #expect(status.instances.allSatisfy { $0.traffic?.inFlight == 0 })
        // The real llama-server's own token counts (usage, or timings at the end of a stream) reach status and
        // the metrics.
        let tokens = status.instances.map { $0.traffic?.tokens ?? 0 }
        #expect(tokens.allSatisfy { $0 > 0 }, "each answer reported its generated tokens: \(tokens)")
        let metrics = try await UpstreamClient.with {
            try await $0.fetch(UpstreamRequest(url: "http://127.0.0.1:\(listenPort)/metrics"))
        }
        let counted = metrics.bodyText.split(separator: "\n").filter { $0.hasPrefix("fleet_tokens_generated_total{") }
            .compactMap { Double($0.split(separator: " ").last ?? "") }.reduce(0, +)
        #expect(Int(counted) == tokens.reduce(0, +), "\(metrics.bodyText)")
    }

    @Test func restartUnderLoadFromTheOpenAIClientFailsNoRequest() async throws {
        let (server, model) = try realServerAndModel()
        let python = try #require(ProcessInfo.processInfo.environment["FLEET_OPENAI_PYTHON"],
                                  "FLEET_OPENAI_PYTHON is not set: run the tests with scripts/test.sh, which installs the openai client")
        let config = try writeConfig(server: server, model: model)
        #expect(try await fleet("up", "--detach", "--config", config).code == 0)
        defer { _ = try? runCommandBlocking(Products.fleet, ["down", "--config", config]) }
        let before = try await ControlClient(baseURL: "http://127.0.0.1:\(listenPort)").status().instances.compactMap(\.pid)

        let stopFile = directory + "/stop-load"
        let outputPath = directory + "/load.json"
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("openai_load.py").path
        let load = try ChildProcess(python, [script, "http://127.0.0.1:\(listenPort)", "gemma", stopFile],
                                    output: outputPath, errorOutput: directory + "/load.err")
        defer { if load.isRunning { load.terminate() } }

        try await Task.sleep(for: .seconds(2))
        let restart = try await fleet("restart", "gemma", "--config", config)
        try await Task.sleep(for: .seconds(2))
        _ = FileManager.default.createFile(atPath: stopFile, contents: nil)
        try await eventually(timeout: .seconds(120), "load finished") { !load.isRunning }

        #expect(restart.code == 0, "\(restart.output)")
        #expect(restart.output.contains("gemma/0: pid") && restart.output.contains("gemma/1: pid"))
        let report = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: outputPath))) as? [String: Any])
        #expect((report["failures"] as? [String])?.isEmpty == true, "\(report)")
        #expect((report["completed"] as? Int ?? 0) >= 8, "\(report)")
        let after = try await ControlClient(baseURL: "http://127.0.0.1:\(listenPort)").status().instances
        #expect(after.count == 2 && after.allSatisfy { $0.state == .ready && $0.generation == 1 })
        #expect(Set(after.compactMap(\.pid)).isDisjoint(with: before))
    }

    @Test func twoReplicasServeRecoverFromKillAndStopCleanly() async throws {
        let (server, model) = try realServerAndModel()
        let config = try writeConfig(server: server, model: model)

        let up = try await fleet("up", "--detach", "--config", config)
        #expect(up.code == 0, "\(up.output)")
        #expect(up.output.contains("fleet is ready: 2/2 instances"), "\(up.output)")

        let json = try await fleet("status", "--json", "--config", config)
        let status = try StatusCoding.decoder().decode(FleetStatus.self, from: Data(json.output.utf8))
        #expect(status.instances.map(\.state) == [.ready, .ready])
        let ports = status.instances.compactMap(\.port)
        var pids = status.instances.compactMap(\.pid)
        try #require(ports.count == 2 && pids.count == 2)

        for port in ports {
            let answer = try await complete(port: port)
            let choices = try #require(answer["choices"] as? [[String: Any]])
            let message = try #require(choices.first?["message"] as? [String: Any])
            #expect(!(message["content"] as? String ?? "").isEmpty, "a real model wrote something")
            let usage = try #require(answer["usage"] as? [String: Any])
            #expect((usage["completion_tokens"] as? Int ?? 0) > 0)
        }

        // kill -9 one instance: it is restarted, ready again, and answers again.
        kill(pids[0], SIGKILL)
        let client = ControlClient(baseURL: "http://127.0.0.1:\(listenPort)")
        try await eventually(timeout: .seconds(120), "gemma/0 restarted and ready") {
            let now = try await client.status().instances[0]
            return now.state == .ready && now.restarts == 1 && now.pid != pids[0]
        }
        let restarted = try await client.status().instances[0]
        _ = try await complete(port: try #require(restarted.port))
        #expect(try await client.status().instances[1].restarts == 0, "the other replica was not touched")
        pids.append(try #require(restarted.pid))

        let down = try await fleet("down", "--config", config)
        #expect(down.code == 0, "\(down.output)")
        #expect(pids.allSatisfy { !ProcessProbe.isAlive($0) })
        #expect(!ProcessProbe.isAlive(status.controller.pid))
        let leftovers = portRange.flatMap { processes(matching: "llama-server --model \(model) --host 127.0.0.1 --port \($0) ") }
        #expect(leftovers.isEmpty, "no llama-server of this fleet is left: \(leftovers)")
    }
}
