import FleetTestSupport
import Foundation
import Testing
@testable import FleetConfig
@testable import FleetCore

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
