import Foundation

/// Parses the durations fleet.json accepts: a number of seconds (`2`, `0.5`) or a string with a unit
/// (`"500ms"`, `"2s"`, `"5m"`, `"1h"`).
enum ConfigDuration {
    static func parse(_ value: JSONValue) -> Duration? {
        switch value {
        case .number(let seconds) where seconds >= 0 && seconds.isFinite:
            return .milliseconds(Int64((seconds * 1000).rounded()))
        case .string(let text):
            return parse(text)
        default:
            return nil
        }
    }

    static func parse(_ text: String) -> Duration? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        for (suffix, scale) in units where trimmed.hasSuffix(suffix) {
            let number = trimmed.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)
            // "5ms" also ends in "s": only accept when what is left is a plain number.
            guard let amount = Double(number), amount >= 0, amount.isFinite else { continue }
            return .milliseconds(Int64((amount * scale * 1000).rounded()))
        }
        return nil
    }

    static let help = "a number of seconds or a string such as \"500ms\", \"2s\", \"5m\""
}

/// Parses sizes: `"512KiB"`, `"16MiB"`, `"2GiB"` (powers of 1024), `"1KB"`, `"1MB"`, `"1GB"` (powers of 1000),
/// or a plain number of bytes.
enum ConfigSize {
    static func parse(_ text: String) -> Int? {
        let units: [(String, Double)] = [("KiB", 1024), ("MiB", 1024 * 1024), ("GiB", 1024 * 1024 * 1024),
                                         ("TiB", 1024 * 1024 * 1024 * 1024), ("KB", 1e3), ("MB", 1e6), ("GB", 1e9),
                                         ("TB", 1e12), ("B", 1)]
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        for (suffix, scale) in units where trimmed.hasSuffix(suffix) {
            let number = trimmed.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)
            guard let amount = Double(number), amount > 0, amount.isFinite else { return nil }
            return Int((amount * scale).rounded())
        }
        return Int(trimmed).flatMap { $0 > 0 ? $0 : nil }
    }
}
