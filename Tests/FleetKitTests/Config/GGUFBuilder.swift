import FleetTestSupport
import Foundation
import Testing

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
