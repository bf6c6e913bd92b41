import FleetClient
import FleetCore
import FleetTestSupport
import FleetUpstream
import Foundation
import Testing

/// Every route family beyond chat on the real llama-server, through the official clients.
extension RealFleetTests {
    @Test func theAnthropicAndOpenAIClientsUseMessagesResponsesEmbeddingsAndTokenizeThroughTheGateway() async throws {
        let (server, model) = try realServerAndModel()
        let python = try #require(ProcessInfo.processInfo.environment["FLEET_OPENAI_PYTHON"],
                                  "FLEET_OPENAI_PYTHON is not set: run the tests with scripts/test.sh, which installs the clients")
        let config = try writeFleet("routes.json", server: server, models: """
            "gemma": { "path": "\(model)", "contextSize": 2048, "gpuLayers": 0, "threads": 1, "parallel": 2,
                       "aliases": ["claude-local"] },
            "gemma-embed": { "path": "\(model)", "contextSize": 1024, "gpuLayers": 0, "threads": 1,
                             "args": ["--embeddings", "--pooling", "mean"] }
            """)
        let up = try await runCommand(Products.fleet, ["up", "--detach", "--config", config])
        #expect(up.code == 0, "\(up.output)")
        defer { _ = try? runCommandBlocking(Products.fleet, ["down", "--config", config]) }

        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("clients_check.py").path
        // The alias: every answer's `model` must be the name the client asked for.
        let check = try await runCommand(python, [script, "http://127.0.0.1:\(listenPort)", "claude-local", "gemma-embed"])
        #expect(check.code == 0, "\(check.output)")
        let seen = try #require(try JSONSerialization.jsonObject(with: Data(check.output.utf8)) as? [String: Any], "\(check.output)")
        #expect((seen["countTokens"] as? Int ?? 0) > 0 && (seen["embeddingDimensions"] as? Int ?? 0) > 0, "\(seen)")
        let status = try await ControlClient(baseURL: "http://127.0.0.1:\(listenPort)").status()
        let gemma = try #require(status.instances.first { $0.model == "gemma" }?.traffic)
        #expect(gemma.tokens > 0, "the new routes' token counts reach status")
    }
}
