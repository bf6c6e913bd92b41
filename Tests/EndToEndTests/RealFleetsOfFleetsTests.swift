import FleetClient
import FleetCore
import FleetTestSupport
import Foundation
import Testing

extension RealFleetTests {
    /// A front fleet with no model of its own offers a back fleet's real model to the official openai client: the
    /// back fleet wants a key, the front sends it (and the client sends none).
    @Test func aFrontFleetWithNoModelsServesTheOpenAIClientFromABackFleetOnTheRealModel() async throws {
        let (server, model) = try realServerAndModel()
        let python = try #require(ProcessInfo.processInfo.environment["FLEET_OPENAI_PYTHON"],
                                  "FLEET_OPENAI_PYTHON is not set: run the tests with scripts/test.sh, which installs the openai client")
        let backKey = "back-fleet-key-for-the-front"
        let back = try writeFleet("back.json", server: server, extra: #""apiKeys": ["\#(backKey)"],"#, models: """
            "gemma": { "path": "\(model)", "contextSize": 1024, "gpuLayers": 0, "threads": 1, "parallel": 2,
                       "aliases": ["gemma-alias"] }
            """)
        let up = try await runCommand(Products.fleet, ["up", "--detach", "--config", back])
        #expect(up.code == 0, "\(up.output)")
        defer { _ = try? runCommandBlocking(Products.fleet, ["down", "--config", back]) }

        let frontPort = TestPorts.block(1).lowerBound
        let front = directory + "/front.json"
        try """
            { "listen": "127.0.0.1:\(frontPort)", "stateDir": "\(directory)/front-state",
              "peers": [ { "url": "http://127.0.0.1:\(listenPort)", "apiKeyEnv": "FLEET_E2E_BACK_KEY" } ],
              "models": {} }
            """.write(toFile: front, atomically: true, encoding: .utf8)
        // No llama-server on the front's path: it runs none.
        let frontUp = try await runCommand(Products.fleet, ["up", "--detach", "--config", front],
                                           environment: ["FLEET_E2E_BACK_KEY": backKey, "FLEET_LLAMA_SERVER": "/nonexistent/llama-server"])
        #expect(frontUp.code == 0, "\(frontUp.output)")
        defer { _ = try? runCommandBlocking(Products.fleet, ["down", "--config", front]) }
        try await eventually(timeout: .seconds(60), "the back fleet's model is offered") {
            let status = try? await ControlClient(baseURL: "http://127.0.0.1:\(frontPort)").status()
            return status?.instances.contains { $0.state == .ready && $0.managed == false } == true
        }

        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("openai_client_check.py").path
        let check = try await runCommand(python, [script, "http://127.0.0.1:\(frontPort)", "gemma", "gemma-alias"])
        #expect(check.code == 0, "\(check.output)")
        let seen = try #require(try JSONSerialization.jsonObject(with: Data(check.output.utf8)) as? [String: Any], "\(check.output)")
        #expect((seen["pieces"] as? Int ?? 0) >= 2)
        let backStatus = try await ControlClient(baseURL: "http://127.0.0.1:\(listenPort)", apiKey: backKey).status()
        #expect(backStatus.instances.reduce(0) { $0 + ($1.traffic?.served ?? 0) } >= 4, "the back fleet served the front's requests")
    }
}
