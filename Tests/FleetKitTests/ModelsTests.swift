import FleetTestSupport
import Foundation
import Testing
@testable import FleetClient
@testable import FleetConfig
@testable import FleetCore
@testable import FleetRouting
@testable import FleetServer
@testable import FleetSupervision
@testable import FleetUpstream

/// Builds GGUF headers for tests: metadata and tensor shapes, no weights.
struct GGUFBuilder {
    enum Value {
        case u32(UInt32)
        case string(String)
        case strings([String])
        case i32s([Int32])
        case f32(Float)
    }

    var metadata: [(String, Value)] = []
    var tensors: [(String, [UInt64])] = []
    /// Zero bytes after the header, standing in for weights.
    var padding = 0

    func bytes() -> Data {
        var data = Data("GGUF".utf8)
        func u32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
        func u64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
        func string(_ text: String) { u64(UInt64(text.utf8.count)); data.append(contentsOf: Array(text.utf8)) }
        u32(3)
        u64(UInt64(tensors.count))
        u64(UInt64(metadata.count))
        for (key, value) in metadata {
            string(key)
            switch value {
            case .u32(let number): u32(4); u32(number)
            case .string(let text): u32(8); string(text)
            case .strings(let list): u32(9); u32(8); u64(UInt64(list.count)); list.forEach(string)
            case .i32s(let list): u32(9); u32(5); u64(UInt64(list.count)); list.forEach { u32(UInt32(bitPattern: $0)) }
            case .f32(let number): u32(6); u32(number.bitPattern)
            }
        }
        for (name, shape) in tensors {
            string(name)
            u32(UInt32(shape.count))
            shape.forEach(u64)
            u32(12)  // Q4_K
            u64(0)
        }
        data.append(Data(count: padding))
        return data
    }

    /// A small llama-shaped model: 4 layers, 256 wide, 8 heads of 32, 2 KV heads, trained for 2048 tokens.
    static func llama(padding: Int = 0) -> GGUFBuilder {
        GGUFBuilder(
            metadata: [("general.architecture", .string("llama")), ("general.name", .string("Tiny Llama")),
                       ("general.size_label", .string("1M")), ("general.file_type", .u32(15)),
                       ("llama.context_length", .u32(2048)), ("llama.block_count", .u32(4)),
                       ("llama.embedding_length", .u32(256)), ("llama.attention.head_count", .u32(8)),
                       ("llama.attention.head_count_kv", .u32(2)), ("llama.rope.freq_base", .f32(10000)),
                       ("tokenizer.ggml.tokens", .strings(["<s>", "</s>", "hello"]))],
            tensors: [("token_embd.weight", [256, 1000]), ("output_norm.weight", [256])],
            padding: padding)
    }

    @discardableResult
    func write(to path: String) -> String {
        FileManager.default.createFile(atPath: path, contents: bytes())
        return path
    }
}

@Suite("GGUF headers and memory estimates")
struct ModelsTests {
    let directory = temporaryDirectory()

    @Test func headerGivesArchitectureShapeQuantizationAndParameterCount() throws {
        let path = GGUFBuilder.llama(padding: 4096).write(to: directory + "/tiny.gguf")
        let metadata = try GGUFMetadata.read(path: path)
        #expect(metadata.architecture == "llama")
        #expect(metadata.name == "Tiny Llama")
        #expect(metadata.sizeLabel == "1M")
        #expect(metadata.quantization == "Q4_K_M")
        #expect(metadata.contextLength == 2048)
        #expect(metadata.parameterCount == 256 * 1000 + 256)
        #expect(metadata.layers == 4 && metadata.headCountKV == 2)
        // 4 layers × 2 KV heads × (32 + 32) values × 2 bytes.
        #expect(metadata.kvBytesPerToken == 4 * 2 * 64 * 2)
        #expect(metadata.fileSize == (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int))
    }

    @Test func perLayerKVHeadCountsUseTheLargest() throws {
        var builder = GGUFBuilder.llama()
        builder.metadata.removeAll { $0.0 == "llama.attention.head_count_kv" }
        builder.metadata.append(("llama.attention.head_count_kv", .i32s([2, 4, 2, 4])))
        let metadata = try GGUFMetadata.read(path: builder.write(to: directory + "/layers.gguf"))
        #expect(metadata.headCountKV == 4)
    }

    @Test func aTruncatedOrForeignFileIsRefusedWithTheReason() throws {
        let whole = GGUFBuilder.llama().bytes()
        let truncated = directory + "/cut.gguf"
        FileManager.default.createFile(atPath: truncated, contents: whole.prefix(whole.count - 10))
        #expect(throws: GGUFError.self) { try GGUFMetadata.read(path: truncated) }
        do {
            _ = try GGUFMetadata.read(path: truncated)
        } catch {
            #expect(error.detail.contains("truncated"))
        }
        let foreign = directory + "/model.bin"
        FileManager.default.createFile(atPath: foreign, contents: Data("PK\u{3}\u{4}".utf8) + Data(count: 64))
        do {
            _ = try GGUFMetadata.read(path: foreign)
            Issue.record("a zip file was read as GGUF")
        } catch {
            #expect(error.detail.contains("not a GGUF file"))
        }
    }

    @Test func estimateIsWeightsPlusKVCacheForTheContextPlusOverhead() throws {
        let path = GGUFBuilder.llama(padding: 10 << 20).write(to: directory + "/est.gguf")
        let metadata = try GGUFMetadata.read(path: path)
        let configured = MemoryEstimate(metadata: metadata, contextSize: 8192)
        #expect(configured.weights == metadata.fileSize)
        #expect(configured.kvCache == 8192 * 1024)
        #expect(configured.total == configured.weights + configured.kvCache + configured.overhead)
        let trained = MemoryEstimate(metadata: metadata, contextSize: nil)
        #expect(trained.contextSize == 2048, "without contextSize llama-server uses the trained context")
        var model = ModelConfig(name: "m", path: path)
        #expect(MemoryEstimate.bytes(for: model) == trained.total)
        model.memory = 3 << 30
        #expect(MemoryEstimate.bytes(for: model) == 3 << 30, "memory replaces the estimate")
    }

    @Test func bytesReadAsPeopleWriteThem() {
        #expect((512).formattedBytes == "512 B")
        #expect((1536).formattedBytes == "1.5 KiB")
        #expect((16 << 30).formattedBytes == "16.0 GiB")
        #expect((300 << 20).formattedBytes == "300 MiB")
    }
}

@Suite("memory budget rules")
struct MemoryBudgetTests {
    let gib = 1 << 30

    @Test func aFleetWhoseStartingModelsExceedTheBudgetIsRefused() {
        let entries = [MemoryBudget.Entry(name: "a", cost: 3 * gib, startsWithFleet: true, evictable: false),
                       MemoryBudget.Entry(name: "b", cost: 2 * gib, startsWithFleet: true, evictable: true)]
        let problems = MemoryBudget.problems(entries, budget: 4 * gib)
        #expect(problems.map(\.path) == ["memoryBudget"])
        #expect(problems[0].message.contains("a 3.0 GiB, b 2.0 GiB"))
        #expect(MemoryBudget.problems(entries, budget: 5 * gib).isEmpty)
    }

    @Test func anOnDemandModelThatCanNeverFitBesideTheAlwaysRunningOnesIsRefused() {
        let entries = [MemoryBudget.Entry(name: "pinned", cost: 3 * gib, startsWithFleet: true, evictable: false),
                       MemoryBudget.Entry(name: "small", cost: 1 * gib, startsWithFleet: false, evictable: true),
                       MemoryBudget.Entry(name: "big", cost: 2 * gib, startsWithFleet: false, evictable: true)]
        let problems = MemoryBudget.problems(entries, budget: 4 * gib)
        #expect(problems.map(\.path) == ["models.big"], "small fits beside pinned; big never does")
        #expect(problems.first?.fix.contains("memoryBudget") == true)
    }

    @Test func evictionTakesTheLeastRecentlyUsedIdleModelsUntilItFits() {
        let now = ContinuousClock.now
        let residents = [
            MemoryBudget.Resident(name: "recent", cost: gib, evictable: true, busy: false, lastUsed: now),
            MemoryBudget.Resident(name: "oldest", cost: gib, evictable: true, busy: false, lastUsed: now - .seconds(60)),
            MemoryBudget.Resident(name: "older", cost: gib, evictable: true, busy: false, lastUsed: now - .seconds(30)),
        ]
        #expect(MemoryBudget.evictions(need: gib, budget: 4 * gib, residents: residents) == [])
        #expect(MemoryBudget.evictions(need: gib, budget: 3 * gib, residents: residents) == ["oldest"])
        #expect(MemoryBudget.evictions(need: 2 * gib, budget: 3 * gib, residents: residents) == ["oldest", "older"])
    }

    @Test func busyAndAlwaysRunningModelsAreNeverEvicted() {
        let now = ContinuousClock.now
        let residents = [
            MemoryBudget.Resident(name: "busy", cost: gib, evictable: true, busy: true, lastUsed: now - .seconds(90)),
            MemoryBudget.Resident(name: "pinned", cost: gib, evictable: false, busy: false, lastUsed: now - .seconds(60)),
            MemoryBudget.Resident(name: "idle", cost: gib, evictable: true, busy: false, lastUsed: now),
        ]
        #expect(MemoryBudget.evictions(need: gib, budget: 3 * gib, residents: residents) == ["idle"])
        #expect(MemoryBudget.evictions(need: 2 * gib, budget: 3 * gib, residents: residents) == nil,
                "only one idle evictable model: room for 2 GiB cannot be made")
    }
}
