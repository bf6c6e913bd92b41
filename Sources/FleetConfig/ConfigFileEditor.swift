import Foundation

/// Changes one value in a fleet.json in place, leaving everything else — key order, spacing, comments-free
/// formatting — exactly as the user wrote it. Used when `fleet swap` succeeded and the file must say so.
public enum ConfigFileEditor {
    public struct EditError: Error, CustomStringConvertible {
        public var description: String
    }

    /// The text with `models.<model>.path` set to `path`.
    /// - Throws: `EditError` when the file has no such key (or is not the JSON it was).
    public static func settingModelPath(in text: String, model: String, to path: String) throws(EditError) -> String {
        let bytes = Array(text.utf8)
        var scanner = Scanner(bytes: bytes)
        guard let models = scanner.valueRange(forKeyPath: ["models", model, "path"]) else {
            throw EditError(description: "fleet.json has no \"models\".\"\(model)\".\"path\" to update")
        }
        let encoded = String(decoding: (try? JSONEncoder().encode(path)) ?? Data("\"\"".utf8), as: UTF8.self)
            .replacingOccurrences(of: "\\/", with: "/")
        return String(decoding: bytes[..<models.lowerBound] + Array(encoded.utf8) + bytes[models.upperBound...], as: UTF8.self)
    }

    /// A minimal JSON walker that knows where each value starts and ends.
    private struct Scanner {
        let bytes: [UInt8]
        var index = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        mutating func valueRange(forKeyPath path: [String]) -> Range<Int>? {
            index = 0
            skipSpace()
            var remaining = path[...]
            while let key = remaining.first {
                guard peek == UInt8(ascii: "{") else { return nil }
                index += 1
                var found = false
                while true {
                    skipSpace()
                    if peek == UInt8(ascii: "}") { return nil }
                    guard let name = readString() else { return nil }
                    skipSpace()
                    guard peek == UInt8(ascii: ":") else { return nil }
                    index += 1
                    skipSpace()
                    if name == key {
                        found = true
                        break
                    }
                    guard skipValue() else { return nil }
                    skipSpace()
                    if peek == UInt8(ascii: ",") { index += 1 }
                }
                guard found else { return nil }
                remaining = remaining.dropFirst()
            }
            let start = index
            guard skipValue() else { return nil }
            return start..<index
        }

        var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func skipSpace() {
            while let byte = peek, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { index += 1 }
        }

        mutating func readString() -> String? {
            guard peek == UInt8(ascii: "\"") else { return nil }
            let start = index
            guard skipString() else { return nil }
            return (try? JSONDecoder().decode(String.self, from: Data(bytes[start..<index])))
        }

        mutating func skipString() -> Bool {
            index += 1
            while let byte = peek {
                index += 1
                if byte == UInt8(ascii: "\\") { index += 1 } else if byte == UInt8(ascii: "\"") { return true }
            }
            return false
        }

        mutating func skipValue() -> Bool {
            guard let byte = peek else { return false }
            switch byte {
            case UInt8(ascii: "\""):
                return skipString()
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                var depth = 0
                while let next = peek {
                    if next == UInt8(ascii: "\"") {
                        guard skipString() else { return false }
                        continue
                    }
                    if next == UInt8(ascii: "{") || next == UInt8(ascii: "[") { depth += 1 }
                    if next == UInt8(ascii: "}") || next == UInt8(ascii: "]") { depth -= 1 }
                    index += 1
                    if depth == 0 { return true }
                }
                return false
            default:
                while let next = peek, next != UInt8(ascii: ","), next != UInt8(ascii: "}"), next != UInt8(ascii: "]") {
                    index += 1
                }
                return true
            }
        }
    }
}
