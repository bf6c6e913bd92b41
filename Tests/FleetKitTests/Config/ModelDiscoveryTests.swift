import FleetTestSupport
import Foundation
import Testing
@testable import FleetConfig

/// `ModelDiscovery`: which files under a folder are models, what they are called, and the fleet.json text made
/// from them.
@Suite("model discovery")
struct ModelDiscoveryTests {
    let directory = temporaryDirectory()

    @discardableResult
    func makeFolder(_ relative: String) -> String {
        let path = directory + "/" + relative
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    func write(_ text: String, to relative: String) {
        _ = FileManager.default.createFile(atPath: directory + "/" + relative, contents: Data(text.utf8))
    }

    @Test func findsGGUFsInNestedFoldersByTheirBytesAndIgnoresEverythingElse() {
        makeFolder("a/b")
        GGUFBuilder.llama().write(to: directory + "/top.gguf")
        GGUFBuilder.llama().write(to: directory + "/a/b/deep.gguf")
        // Magic bytes decide, not the name: a GGUF called .bin is a model…
        GGUFBuilder.llama().write(to: directory + "/a/weights.bin")
        // …and these are not.
        write("not a model at all", to: "a/fake.gguf")
        _ = FileManager.default.createFile(atPath: directory + "/a/b/pytorch.bin", contents: Data("PK\u{3}\u{4}".utf8) + Data(count: 64))
        write("some notes", to: "README.txt")

        let discovery = ModelDiscovery.scan([directory])
        #expect(Set(discovery.found.map(\.path)) == [directory + "/top.gguf", directory + "/a/b/deep.gguf", directory + "/a/weights.bin"])
        #expect(discovery.found.allSatisfy { $0.metadata.quantization == "Q4_K_M" && $0.metadata.architecture == "llama" })
        // Only the file named like a model gets a note; other files are simply not models.
        #expect(discovery.skipped.map(\.path) == [directory + "/a/fake.gguf"])
        #expect(discovery.skipped.first?.reason.contains("not a GGUF file") == true)
        #expect(discovery.directoriesSearched == 3)
    }

    @Test func aCorruptFileOrAGitLFSPointerIsSkippedWithWhyAndTheRestIsStillFound() {
        GGUFBuilder.llama().write(to: directory + "/good.gguf")
        let whole = GGUFBuilder.llama().bytes()
        _ = FileManager.default.createFile(atPath: directory + "/cut.gguf", contents: whole.prefix(whole.count - 10))
        write("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n", to: "lfs.gguf")

        let discovery = ModelDiscovery.scan([directory])
        #expect(discovery.found.map(\.path) == [directory + "/good.gguf"])
        let reasons = Dictionary(uniqueKeysWithValues: discovery.skipped.map { ($0.path, $0.reason) })
        #expect(reasons[directory + "/cut.gguf"]?.contains("truncated") == true)
        #expect(reasons[directory + "/lfs.gguf"]?.contains("git lfs pull") == true)
    }

    @Test func symbolicLinksAreFollowedOnceWithoutLooping() throws {
        let store = makeFolder("store")
        let project = makeFolder("project")
        GGUFBuilder.llama().write(to: store + "/real.gguf")
        let manager = FileManager.default
        // A link to a file elsewhere is listed under the link's path (that is where fleet.json will point).
        try manager.createSymbolicLink(atPath: project + "/linked.gguf", withDestinationPath: store + "/real.gguf")
        // A second link to the same file, and a link back up the tree: neither repeats anything.
        makeFolder("project/more")
        try manager.createSymbolicLink(atPath: project + "/more/again.gguf", withDestinationPath: store + "/real.gguf")
        try manager.createSymbolicLink(atPath: project + "/more/up", withDestinationPath: project)
        try manager.createSymbolicLink(atPath: project + "/dangling.gguf", withDestinationPath: store + "/gone.gguf")

        let discovery = ModelDiscovery.scan([project])
        #expect(discovery.found.map(\.path) == [project + "/linked.gguf"])
        #expect(discovery.skipped.map(\.path) == [project + "/dangling.gguf"])
        #expect(discovery.skipped.first?.reason.contains("does not exist") == true)
    }

    @Test func aSplitModelIsListedOnceWithEveryPartCounted() throws {
        let first = GGUFBuilder.llama(padding: 1000).write(to: directory + "/big-00001-of-00002.gguf")
        var second = GGUFBuilder()
        second.tensors = [("blk.0.attn_q.weight", [256, 256])]
        second.write(to: directory + "/big-00002-of-00002.gguf")
        GGUFBuilder.llama().write(to: directory + "/half-00001-of-00003.gguf")

        let discovery = ModelDiscovery.scan([directory])
        let big = try #require(discovery.found.first)
        #expect(discovery.found.count == 1)
        #expect(big.path == first && big.name == "big" && big.parts == 2)
        let sizes = try [first, directory + "/big-00002-of-00002.gguf"].map {
            try #require(try FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int)
        }
        #expect(big.metadata.fileSize == sizes[0] + sizes[1])
        #expect(big.metadata.parameterCount == 256 * 1000 + 256 + 256 * 256)
        #expect(discovery.skipped.map(\.path) == [directory + "/half-00001-of-00003.gguf"])
        #expect(discovery.skipped.first?.reason.contains("part 2 (half-00002-of-00003.gguf) is missing") == true)
    }

    @Test func namesAreUniqueAndNeverTakeAConfiguredNameOrAlias() {
        makeFolder("x")
        makeFolder("y")
        makeFolder("z")
        GGUFBuilder.llama().write(to: directory + "/x/tiny.gguf")
        GGUFBuilder.llama().write(to: directory + "/y/tiny.gguf")
        GGUFBuilder.llama().write(to: directory + "/z/tiny.gguf")
        var configured = ModelConfig(name: "tiny", path: "/nowhere/else.gguf")
        configured.aliases = ["tiny-2"]

        let names = ModelDiscovery.scan([directory], configured: [configured]).found.map(\.name)
        #expect(names == ["tiny-3", "tiny-4", "tiny-5"])
        #expect(ModelDiscovery.scan([directory]).found.map(\.name) == ["tiny", "tiny-2", "tiny-3"])
    }

    @Test func aConfiguredFileIsRecognisedThroughLinksAndKeepsItsName() throws {
        let real = GGUFBuilder.llama().write(to: makeFolder("cache") + "/model.gguf")
        try FileManager.default.createSymbolicLink(atPath: makeFolder("models") + "/model.gguf", withDestinationPath: real)
        var chat = ModelConfig(name: "chat", path: directory + "/models/model.gguf")
        chat.contextSize = 1024
        let discovery = ModelDiscovery.scan([directory + "/cache"], configured: [chat])
        #expect(discovery.found.map(\.configuredAs) == ["chat"])
        #expect(discovery.found.map(\.name) == ["chat"])
        // Shown as it runs: the configured context, and `memory` when set.
        #expect(discovery.found.map(\.contextSize) == [1024])
        chat.memory = 5 << 30
        #expect(ModelDiscovery.scan([directory + "/cache"], configured: [chat]).found.map(\.memoryPerInstance) == [5 << 30])
    }

    @Test(arguments: [
        ("gemma-3-270m-q4_k_m.gguf", "gemma-3-270m-q4_k_m"),
        ("My Model (v2)+Q4.GGUF", "My-Model-v2-Q4"),
        ("Qwen2.5-7B-Instruct-Q4_K_M-00001-of-00004.gguf", "Qwen2.5-7B-Instruct-Q4_K_M"),
        ("  .gguf", "model"),
        ("llama:3b.gguf", "llama:3b"),
    ])
    func namesComeFromTheFileInCharactersFleetJSONAccepts(file: String, name: String) {
        #expect(ModelDiscovery.suggestedName(forFile: "/models/" + file) == name)
        #expect(FleetConfig.isValidName(ModelDiscovery.suggestedName(forFile: "/models/" + file)))
    }

    @Test func theSuggestedContextIsTheTrainedOneUpTo4096() throws {
        let small = try GGUFMetadata.read(path: GGUFBuilder.llama().write(to: directory + "/small.gguf"))
        #expect(ModelDiscovery.suggestedContextSize(small) == 2048)
        var builder = GGUFBuilder.llama()
        builder.metadata.removeAll { $0.0 == "llama.context_length" }
        builder.metadata.append(("llama.context_length", .u32(131_072)))
        let large = try GGUFMetadata.read(path: builder.write(to: directory + "/large.gguf"))
        #expect(ModelDiscovery.suggestedContextSize(large) == 4096)
        let found = try #require(ModelDiscovery.scan([directory + "/large.gguf"]).found.first)
        #expect(found.memoryPerInstance == MemoryEstimate(metadata: large, contextSize: 4096).total)
    }

    @Test func aSnippetPastedIntoModelsLoadsAsThatModel() throws {
        GGUFBuilder.llama().write(to: makeFolder("models/nested") + "/tiny model.gguf")
        let found = try #require(ModelDiscovery.scan([directory]).found.first)
        let snippet = ConfigSnippet.model(name: found.name, path: found.path, contextSize: found.contextSize,
                                          relativeTo: directory)
        #expect(snippet == #""tiny-model": { "path": "models/nested/tiny model.gguf", "contextSize": 2048 }"#)
        let config = try FleetConfig.decode(Data("{ \"models\": { \(snippet) } }".utf8), source: "test", baseDirectory: directory)
        #expect(config.models.map(\.name) == ["tiny-model"])
        #expect(config.models.first?.path == found.path)
        #expect(config.models.first?.contextSize == 2048)
        // Outside fleet.json's folder the path is absolute, and still loads.
        let elsewhere = ConfigSnippet.model(name: found.name, path: found.path, contextSize: nil, relativeTo: "/srv/fleet")
        let moved = try FleetConfig.decode(Data("{ \"models\": { \(elsewhere) } }".utf8), source: "test", baseDirectory: "/srv/fleet")
        #expect(moved.models.first?.path == found.path)
    }

    @Test func theStarterFileLoadsWithEveryModelFound() throws {
        GGUFBuilder.llama().write(to: makeFolder("m") + "/one.gguf")
        GGUFBuilder.llama().write(to: directory + "/m/two.gguf")
        let discovery = ModelDiscovery.scan([directory])
        let text = ConfigSnippet.starterFile(models: discovery.found, directory: directory, schema: ConfigSnippet.schemaID)
        let config = try FleetConfig.decode(Data(text.utf8), source: "test", baseDirectory: directory)
        #expect(config.models.map(\.name) == ["one", "two"])
        #expect(config.models.map(\.path) == [directory + "/m/one.gguf", directory + "/m/two.gguf"])
        #expect(config.models.allSatisfy { $0.replicas == 1 && $0.contextSize == 2048 })
        #expect(text.contains(#""$schema": "https://github.com/fleet/fleet/docs/fleet.schema.json""#))
    }

    @Test func theSchemaIsReferencedRelativeInsideTheCheckoutAndAbsoluteElsewhere() throws {
        let schema = "/src/fleet/docs/fleet.schema.json"
        #expect(ConfigSnippet.schemaReference(schemaFile: schema, outputDirectory: "/src/fleet") == "docs/fleet.schema.json")
        #expect(ConfigSnippet.schemaReference(schemaFile: schema, outputDirectory: "/src/fleet/examples/two") == "../../docs/fleet.schema.json")
        #expect(ConfigSnippet.schemaReference(schemaFile: schema, outputDirectory: "/home/me/llm") == schema)
        #expect(ConfigSnippet.schemaReference(schemaFile: nil, outputDirectory: "/home/me/llm") == ConfigSnippet.schemaID)

        // The published address is the one the schema declares as its own.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let data = try Data(contentsOf: root.appendingPathComponent("docs/fleet.schema.json"))
        let declared = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])["$id"] as? String
        #expect(declared == ConfigSnippet.schemaID)
    }

    @Test(arguments: [(268_098_176, "268M"), (1_100_000_000, "1.1B"), (70_553_706_496, "71B"), (7_241_732_096, "7.2B"),
                      (999_700_000, "1.0B"), (1_500, "1.5K"), (42, "42")])
    func parameterCountsReadAsModelNamesWriteThem(count: Int, label: String) {
        let metadata = GGUFMetadata(fileSize: 0, version: 3, parameterCount: count)
        #expect(metadata.parameterLabel == label)
    }
}
