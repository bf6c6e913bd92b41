import Foundation

/// What a GGUF file's header says about its model: read from the key/value section and the tensor table, never
/// from the weights. Used to estimate an instance's memory (`memoryBudget`) and by `fleet models`.
public struct GGUFMetadata: Sendable, Equatable, Codable {
    /// The file's size in bytes: the weights, which llama-server maps into memory.
    public var fileSize: Int
    /// GGUF format version (3 today).
    public var version: Int
    /// `general.architecture`, e.g. `llama`, `gemma3`, `qwen2`.
    public var architecture: String?
    /// `general.name`.
    public var name: String?
    /// `general.size_label`, e.g. `270M`, `8x7B`.
    public var sizeLabel: String?
    /// The sum of every tensor's element count.
    public var parameterCount: Int
    /// `general.file_type` as llama.cpp names it (`Q4_K_M`, `F16`, …); nil when absent or unknown.
    public var quantization: String?
    /// `<arch>.context_length`: the context the model was trained for, llama-server's default `--ctx-size`.
    public var contextLength: Int?
    /// `<arch>.block_count`: layers.
    public var layers: Int?
    /// `<arch>.embedding_length`.
    public var embeddingLength: Int?
    /// `<arch>.attention.head_count`.
    public var headCount: Int?
    /// `<arch>.attention.head_count_kv` (the largest, when given per layer); the head count when absent.
    public var headCountKV: Int?
    /// `<arch>.attention.key_length` / `value_length`; embedding length ÷ heads when absent.
    public var keyLength: Int?
    public var valueLength: Int?
    /// `<arch>.pooling_type`: set by embedding models (1 mean, 2 cls, 3 last) and rerankers (4 rank).
    public var poolingType: Int?

    /// An embedding model: llama-server serves it with `--embeddings`.
    public var isEmbeddingModel: Bool { (1...3).contains(poolingType ?? 0) }
    /// A reranker: llama-server serves it with `--reranking`.
    public var isReranker: Bool { poolingType == 4 }

    /// Bytes of KV cache per token of context at f16 (llama-server's default cache type), over every layer; nil
    /// when the header lacks the shapes.
    public var kvBytesPerToken: Int? {
        guard let layers, let heads = headCountKV ?? headCount, heads > 0 else { return nil }
        let fallback = embeddingLength.flatMap { embedding in headCount.map { embedding / max(1, $0) } }
        guard let key = keyLength ?? fallback, let value = valueLength ?? fallback else { return nil }
        return layers * heads * (key + value) * 2
    }

    /// The parameter count as model names write it: `268M`, `1.1B`, `70B` (decimal units; one decimal below 10).
    public var parameterLabel: String {
        let units: [(Double, String)] = [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")]
        let count = Double(parameterCount)
        guard let (scale, unit) = units.first(where: { count >= $0.0 * 0.9995 }) else { return "\(parameterCount)" }
        let value = count / scale
        return value < 9.95 ? "\((value * 10).rounded() / 10)\(unit)" : "\(Int(value.rounded()))\(unit)"
    }

    /// Reads the header of the GGUF at `path`.
    /// - Throws: `GGUFError` when the file cannot be read or is not a well-formed GGUF.
    public static func read(path: String) throws(GGUFError) -> GGUFMetadata {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw GGUFError(path: path, detail: "cannot be read (\(error.localizedDescription))")
        }
        let result = data.withUnsafeBytes { bytes -> Result<GGUFMetadata, GGUFError> in
            var reader = GGUFReader(bytes: bytes, path: path)
            do throws(GGUFError) {
                return .success(try reader.readHeader(fileSize: bytes.count))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// llama.cpp's `llama_ftype` values, by number.
    static let fileTypes: [Int: String] = [
        0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
        12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K",
        19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL",
        26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0",
        37: "TQ2_0", 38: "MXFP4_MOE",
    ]
}

/// A GGUF header that cannot be read.
public struct GGUFError: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var detail: String

    public var description: String { "\(path): \(detail)" }
}

/// A cursor over a mapped GGUF file. Values the metadata does not need (the tokenizer's large arrays) are
/// skipped without being decoded.
private struct GGUFReader {
    let bytes: UnsafeRawBufferPointer
    let path: String
    var offset = 0

    init(bytes: UnsafeRawBufferPointer, path: String) {
        self.bytes = bytes
        self.path = path
    }

    /// A scalar or string value worth keeping.
    enum Value {
        case integer(Int)
        case string(String)
        case integers([Int])
        case other
    }

    mutating func readHeader(fileSize: Int) throws(GGUFError) -> GGUFMetadata {
        guard bytes.count >= 24, Array(bytes[0..<4]) == GGUFFile.magic else {
            throw GGUFError(path: path, detail: "is not a GGUF file (it does not start with the bytes \"GGUF\")")
        }
        offset = 4
        let version = Int(try scalar(UInt32.self))
        guard version >= 2 else { throw GGUFError(path: path, detail: "uses GGUF version \(version); fleet reads versions 2 and later") }
        let tensorCount = try count(try scalar(UInt64.self), "tensor count")
        let keyCount = try count(try scalar(UInt64.self), "metadata count")

        var values: [String: Value] = [:]
        for _ in 0..<keyCount {
            let key = try string()
            let type = try scalar(UInt32.self)
            let keep = key.hasPrefix("general.") || !key.hasPrefix("tokenizer.")
            values[key] = try value(type: type, keep: keep)
        }
        var parameters = 0
        for _ in 0..<tensorCount {
            try skipString()
            let dimensions = try count(UInt64(try scalar(UInt32.self)), "tensor dimensions")
            var elements = 1
            for _ in 0..<dimensions {
                let size = try scalar(UInt64.self)
                guard size <= 1 << 40 else {
                    throw GGUFError(path: path, detail: "has an impossible tensor size (\(size)) at byte \(offset); the file is corrupt")
                }
                elements = elements.multipliedReportingOverflow(by: Int(size)).partialValue
            }
            parameters += elements
            try skip(4 + 8)  // type, offset
        }

        func integer(_ key: String) -> Int? {
            switch values[key] {
            case .integer(let value): value
            case .integers(let list): list.max()
            default: nil
            }
        }
        func text(_ key: String) -> String? {
            if case .string(let value) = values[key] { value } else { nil }
        }
        let arch = text("general.architecture")
        let prefix = (arch ?? "") + "."
        return GGUFMetadata(
            fileSize: fileSize, version: version, architecture: arch, name: text("general.name"),
            sizeLabel: text("general.size_label"), parameterCount: parameters,
            quantization: integer("general.file_type").flatMap { GGUFMetadata.fileTypes[$0] },
            contextLength: integer(prefix + "context_length"), layers: integer(prefix + "block_count"),
            embeddingLength: integer(prefix + "embedding_length"), headCount: integer(prefix + "attention.head_count"),
            headCountKV: integer(prefix + "attention.head_count_kv"), keyLength: integer(prefix + "attention.key_length"),
            valueLength: integer(prefix + "attention.value_length"), poolingType: integer(prefix + "pooling_type"))
    }

    // MARK: - Values

    /// GGUF value types: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool, 8 string, 9 array, 10 u64,
    /// 11 i64, 12 f64.
    private mutating func value(type: UInt32, keep: Bool) throws(GGUFError) -> Value {
        switch type {
        case 0: return .integer(Int(try scalar(UInt8.self)))
        case 1: return .integer(Int(try scalar(Int8.self)))
        case 2: return .integer(Int(try scalar(UInt16.self)))
        case 3: return .integer(Int(try scalar(Int16.self)))
        case 4: return .integer(Int(try scalar(UInt32.self)))
        case 5: return .integer(Int(try scalar(Int32.self)))
        case 10: return .integer(Int(truncatingIfNeeded: try scalar(UInt64.self)))
        case 11: return .integer(Int(try scalar(Int64.self)))
        case 6, 7, 12:
            try skip(try width(of: type))
            return .other
        case 8:
            if keep { return .string(try string()) }
            try skipString()
            return .other
        case 9:
            let elementType = try scalar(UInt32.self)
            let length = try count(try scalar(UInt64.self), "array length")
            if elementType == 8 || elementType == 9 {
                for _ in 0..<length { _ = try value(type: elementType, keep: false) }
                return .other
            }
            let size = try width(of: elementType)
            guard keep, (0...5).contains(elementType) || elementType == 10 || elementType == 11, length <= 4096 else {
                try skip(size * length)
                return .other
            }
            var list: [Int] = []
            for _ in 0..<length {
                if case .integer(let number) = try value(type: elementType, keep: true) { list.append(number) }
            }
            return .integers(list)
        default:
            throw GGUFError(path: path, detail: "has a metadata value of unknown type \(type) at byte \(offset)")
        }
    }

    private func width(of type: UInt32) throws(GGUFError) -> Int {
        switch type {
        case 0, 1, 7: 1
        case 2, 3: 2
        case 4, 5, 6: 4
        case 10, 11, 12: 8
        default: throw GGUFError(path: path, detail: "has an array of unknown type \(type) at byte \(offset)")
        }
    }

    private mutating func scalar<T: FixedWidthInteger>(_: T.Type) throws(GGUFError) -> T {
        let size = MemoryLayout<T>.size
        guard offset + size <= bytes.count else { throw truncated() }
        let value = T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        offset += size
        return value
    }

    private mutating func string() throws(GGUFError) -> String {
        let length = try count(try scalar(UInt64.self), "string length")
        guard offset + length <= bytes.count else { throw truncated() }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + length]), as: UTF8.self)
        offset += length
        return text
    }

    private mutating func skipString() throws(GGUFError) {
        try skip(try count(try scalar(UInt64.self), "string length"))
    }

    private mutating func skip(_ size: Int) throws(GGUFError) {
        guard size >= 0, offset + size <= bytes.count else { throw truncated() }
        offset += size
    }

    /// A count read from the file, refused when it cannot fit the file (a corrupt header).
    private func count(_ raw: UInt64, _ what: String) throws(GGUFError) -> Int {
        guard raw <= UInt64(bytes.count) else {
            throw GGUFError(path: path, detail: "has an impossible \(what) (\(raw)) at byte \(offset); the file is corrupt or truncated")
        }
        return Int(raw)
    }

    private func truncated() -> GGUFError {
        GGUFError(path: path, detail: "ends inside its header (at byte \(offset)); the file is truncated — download it again")
    }
}
