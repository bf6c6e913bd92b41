import FleetClient
import FleetConfig
import FleetCore
import FleetServer
import FleetSupervision
import FleetUpstream
import FleetTestSupport
import Foundation
import Testing

/// What fleet reads from the real GGUF (the one `scripts/test.sh` fetches and passes in `FLEET_TEST_MODEL`),
/// and `fleet models` on its folder. No llama-server needed: only the file's header is read.
@Suite("end to end: the real model file")
struct RealModelFileTests {
    /// The real model; a missing one fails the test with what to run (it never skips silently).
    func realModel() throws -> String {
        let model = try #require(ProcessInfo.processInfo.environment["FLEET_TEST_MODEL"],
                                 "FLEET_TEST_MODEL is not set: run the tests with scripts/test.sh, which fetches the model")
        try #require(FileManager.default.fileExists(atPath: model), "\(model) does not exist")
        return model
    }

    @Test func theGemmaHeaderSaysWhatTheModelIs() throws {
        let metadata = try GGUFMetadata.read(path: try realModel())
        #expect(metadata.architecture == "gemma3")
        #expect(metadata.quantization == "Q4_K_M")
        #expect(metadata.contextLength == 32768)
        #expect((200_000_000...400_000_000).contains(metadata.parameterCount), "\(metadata.parameterCount) parameters")
    }

    @Test func fleetModelsListsTheModelInItsFolder() async throws {
        let model = try realModel()
        let metadata = try GGUFMetadata.read(path: model)
        let folder = URL(fileURLWithPath: model).deletingLastPathComponent().path
        let result = try await runCommand(Products.fleet, ["models", folder], directory: temporaryDirectory())
        #expect(result.code == 0, "\(result.output)")
        let file = URL(fileURLWithPath: model).lastPathComponent
        let row = try #require(result.output.split(separator: "\n").first { $0.contains(file) && $0.contains("gemma3") },
                               "\(result.output)")
        #expect(row.contains("Q4_K_M") && row.contains(metadata.parameterLabel) && row.contains("32768"), "\(row)")
        #expect(result.output.contains(#""path": "\#(URL(fileURLWithPath: model).standardizedFileURL.path)""#), "\(result.output)")
    }
}
