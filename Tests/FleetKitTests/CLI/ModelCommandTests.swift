import FleetTestSupport
import Foundation
import Testing
@testable import FleetConfig

/// `fleet models` and `fleet init` as users run them, on synthetic GGUFs.
@Suite("fleet models and fleet init", .timeLimit(.minutes(2)))
struct ModelCommandTests {
    let directory = temporaryDirectory()

    func fleet(_ arguments: String...) async throws -> (code: Int32, output: String) {
        try await runCommand(Products.fleet, arguments, directory: directory)
    }

    /// models/tiny.gguf and models/more/other.gguf, plus files that are not models.
    func writeModels() {
        try? FileManager.default.createDirectory(atPath: directory + "/models/more", withIntermediateDirectories: true)
        GGUFBuilder.llama().write(to: directory + "/models/tiny.gguf")
        GGUFBuilder.llama().write(to: directory + "/models/more/other.gguf")
        _ = FileManager.default.createFile(atPath: directory + "/models/notes.txt", contents: Data("hello".utf8))
    }

    @Test func initWritesAFleetJSONThatLoads() async throws {
        writeModels()
        let result = try await fleet("init", "models")
        #expect(result.code == 0, "\(result.output)")
        #expect(result.output.contains("wrote fleet.json: 2 models"), "\(result.output)")

        let config = try FleetConfig.load(file: directory + "/fleet.json")
        #expect(config.models.map(\.name) == ["other", "tiny"])
        #expect(Set(config.models.map(\.path)) == [directory + "/models/tiny.gguf", directory + "/models/more/other.gguf"])
        #expect(config.models.allSatisfy { $0.replicas == 1 && $0.contextSize == 2048 })
        let text = try String(contentsOfFile: directory + "/fleet.json", encoding: .utf8)
        #expect(text.contains(#""path": "models/tiny.gguf""#), "paths inside the folder are relative:\n\(text)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let schema = try #require(json["$schema"] as? String)
        #expect(schema.hasSuffix("fleet.schema.json"))
    }

    @Test func initRefusesToReplaceAFileUnlessForced() async throws {
        writeModels()
        let existing = #"{ "models": { "mine": { "path": "models/tiny.gguf" } } }"#
        _ = FileManager.default.createFile(atPath: directory + "/fleet.json", contents: Data(existing.utf8))

        let refused = try await fleet("init", "models")
        #expect(refused.code != 0)
        #expect(refused.output.contains("fleet.json already exists") && refused.output.contains("--force"), "\(refused.output)")
        #expect(try String(contentsOfFile: directory + "/fleet.json", encoding: .utf8) == existing)

        let forced = try await fleet("init", "models", "--force")
        #expect(forced.code == 0, "\(forced.output)")
        #expect(try FleetConfig.load(file: directory + "/fleet.json").models.map(\.name) == ["other", "tiny"])
    }

    @Test func initWritesWhereOutputSays() async throws {
        writeModels()
        try FileManager.default.createDirectory(atPath: directory + "/conf", withIntermediateDirectories: true)
        let result = try await fleet("init", "models", "--output", "conf/fleet.json")
        #expect(result.code == 0, "\(result.output)")
        #expect(result.output.contains("--config conf/fleet.json"), "\(result.output)")
        #expect(!FileManager.default.fileExists(atPath: directory + "/fleet.json"))
        let config = try FleetConfig.load(file: directory + "/conf/fleet.json")
        #expect(config.models.count == 2)
    }

    @Test func initSaysWhereItLookedAndHowToGetAModelWhenThereIsNone() async throws {
        try FileManager.default.createDirectory(atPath: directory + "/empty", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: directory + "/empty/model.gguf", contents: Data("oops".utf8))
        let result = try await fleet("init", "empty")
        #expect(result.code != 0)
        #expect(result.output.contains("no GGUF model under \(directory)/empty"), "\(result.output)")
        #expect(result.output.contains("scripts/fetch-model.sh"), "\(result.output)")
        #expect(result.output.contains("skipped empty/model.gguf: is not a GGUF file"), "\(result.output)")
        #expect(!FileManager.default.fileExists(atPath: directory + "/fleet.json"))
    }

    @Test func modelsListsWhatItFindsWithItsQuantizationAndAnEntryToPaste() async throws {
        writeModels()
        let result = try await fleet("models", "models")
        #expect(result.code == 0, "\(result.output)")
        #expect(result.output.contains("under models: 2 GGUF files"), "\(result.output)")
        let row = try #require(result.output.split(separator: "\n").first { $0.hasPrefix("tiny ") }, "\(result.output)")
        #expect(row.contains("models/tiny.gguf") && row.contains("Q4_K_M") && row.contains("llama") && row.contains("2048"))
        #expect(result.output.contains(#""tiny": { "path": "models/tiny.gguf", "contextSize": 2048 }"#), "\(result.output)")
        #expect(!result.output.contains("notes.txt"))
    }

    @Test func modelsShowsTheConfiguredModelsAndWhichFoundFilesTheyRun() async throws {
        writeModels()
        let config = #"{ "models": { "chat": { "path": "models/tiny.gguf", "replicas": 2, "contextSize": 1024 }, "#
            + #""gone": { "path": "models/missing.gguf" } } }"#
        _ = FileManager.default.createFile(atPath: directory + "/fleet.json", contents: Data(config.utf8))
        let result = try await fleet("models", "models")
        #expect(result.code == 0, "\(result.output)")
        let lines = result.output.split(separator: "\n")
        let chat = try #require(lines.first { $0.hasPrefix("chat ") && $0.contains("× 2 replicas") }, "\(result.output)")
        #expect(chat.contains("1024") && chat.contains("Q4_K_M"))
        #expect(result.output.contains("gone: \(directory)/models/missing.gguf does not exist"), "\(result.output)")
        #expect(lines.contains { $0.contains("models/tiny.gguf") && $0.contains("1024") && $0.contains("configured as chat") }, "\(result.output)")
        // Only the file fleet.json does not run yet gets an entry.
        #expect(result.output.contains(#""other": { "path": "models/more/other.gguf", "contextSize": 2048 }"#), "\(result.output)")
        #expect(!result.output.contains(#""tiny": {"#), "\(result.output)")
    }

    @Test func modelsJSONIsForScripts() async throws {
        writeModels()
        let result = try await fleet("models", "--json", "models")
        #expect(result.code == 0, "\(result.output)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
        let found = try #require(report["found"] as? [[String: Any]])
        #expect(found.compactMap { $0["path"] as? String } == [directory + "/models/more/other.gguf", directory + "/models/tiny.gguf"])
        let metadata = try #require(found.first?["metadata"] as? [String: Any])
        #expect(metadata["quantization"] as? String == "Q4_K_M")
        #expect(metadata["contextLength"] as? Int == 2048)
        #expect(found.first?["snippet"] as? String == #""other": { "path": "models/more/other.gguf", "contextSize": 2048 }"#)
    }

    @Test func modelsWithNothingToShowSaysWhatToDo() async throws {
        let bare = try await fleet("models")
        #expect(bare.code != 0)
        #expect(bare.output.contains("fleet models DIR") && bare.output.contains("fleet init DIR"), "\(bare.output)")
        let missing = try await fleet("models", "nowhere")
        #expect(missing.code != 0)
        #expect(missing.output.contains("nowhere does not exist"), "\(missing.output)")
    }
}
