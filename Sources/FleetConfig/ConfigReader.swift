import Foundation

/// Walks a parsed fleet.json and collects every problem with its key path, instead of stopping at the first.
/// Each accessor returns `nil` (and records an issue) when the value is present but wrong.
struct ConfigReader {
    private(set) var issues: [ConfigIssue] = []

    mutating func report(_ path: String, _ message: String, fix: String) {
        issues.append(ConfigIssue(path: path, message: message, fix: fix))
    }

    /// The object at `path`, after reporting keys it does not know (with a suggestion for likely typos).
    mutating func object(_ value: JSONValue, at path: String, allowed: [String]) -> [String: JSONValue]? {
        guard case .object(let object) = value else {
            report(path, "expected an object, found \(value.typeName)", fix: "write it as { ... }")
            return nil
        }
        for key in object.keys.sorted() where !allowed.contains(key) {
            let suggestion = Self.closest(to: key, in: allowed).map { "did you mean \"\($0)\"? " } ?? ""
            report(join(path, key), "unknown key",
                   fix: "\(suggestion)known keys here: \(allowed.sorted().joined(separator: ", "))")
        }
        return object
    }

    mutating func string(_ object: [String: JSONValue], _ key: String, at path: String, nonEmpty: Bool = true) -> String? {
        guard let value = object[key], value != .null else { return nil }
        guard case .string(let text) = value else {
            report(join(path, key), "expected a string, found \(value.typeName)", fix: "put the value in double quotes")
            return nil
        }
        if nonEmpty && text.trimmingCharacters(in: .whitespaces).isEmpty {
            report(join(path, key), "must not be empty", fix: "give a value or remove the key")
            return nil
        }
        return text
    }

    mutating func int(_ object: [String: JSONValue], _ key: String, at path: String, range: ClosedRange<Int>) -> Int? {
        guard let value = object[key], value != .null else { return nil }
        guard case .number(let number) = value, number.rounded() == number, let int = Int(exactly: number) else {
            report(join(path, key), "expected a whole number, found \(describe(value))", fix: Self.fix(range, "a whole number"))
            return nil
        }
        return within(range, int, at: join(path, key), "a whole number")
    }

    mutating func double(_ object: [String: JSONValue], _ key: String, at path: String, range: ClosedRange<Double>) -> Double? {
        guard let value = object[key], value != .null else { return nil }
        guard case .number(let number) = value else {
            report(join(path, key), "expected a number, found \(describe(value))", fix: Self.fix(range, "a number"))
            return nil
        }
        return within(range, number, at: join(path, key), "a number")
    }

    /// The value when it is in range; otherwise a problem that names the range.
    private mutating func within<T: Comparable>(_ range: ClosedRange<T>, _ value: T, at path: String, _ what: String) -> T? {
        guard range.contains(value) else {
            report(path, "\(value) is out of range", fix: Self.fix(range, what))
            return nil
        }
        return value
    }

    private static func fix<T>(_ range: ClosedRange<T>, _ what: String) -> String {
        "use \(what) between \(range.lowerBound) and \(range.upperBound)"
    }

    mutating func bool(_ object: [String: JSONValue], _ key: String, at path: String) -> Bool? {
        guard let value = object[key], value != .null else { return nil }
        guard case .bool(let flag) = value else {
            report(join(path, key), "expected true or false, found \(describe(value))", fix: "write true or false without quotes")
            return nil
        }
        return flag
    }

    mutating func duration(_ object: [String: JSONValue], _ key: String, at path: String, minimum: Duration = .zero) -> Duration? {
        guard let value = object[key], value != .null else { return nil }
        guard let duration = ConfigDuration.parse(value) else {
            report(join(path, key), "expected a duration, found \(describe(value))", fix: "use \(ConfigDuration.help)")
            return nil
        }
        guard duration >= minimum else {
            report(join(path, key), "must be at least \(minimum)", fix: "use a longer duration")
            return nil
        }
        return duration
    }

    /// A byte count: a whole number of bytes, or a string with a unit (`"512KiB"`, `"16MiB"`, `"2GiB"`, `"1GB"`).
    mutating func size(_ object: [String: JSONValue], _ key: String, at path: String) -> Int? {
        guard let value = object[key], value != .null else { return nil }
        let fix = "use a number of bytes or a string such as \"16MiB\" or \"2GiB\""
        switch value {
        case .number(let number) where number >= 1 && number.rounded() == number:
            return Int(number)
        case .string(let text):
            if let bytes = ConfigSize.parse(text) { return bytes }
        default:
            break
        }
        report(join(path, key), "expected a size, found \(describe(value))", fix: fix)
        return nil
    }

    mutating func stringArray(_ object: [String: JSONValue], _ key: String, at path: String, hint: String) -> [String]? {
        guard let value = object[key], value != .null else { return nil }
        guard case .array(let items) = value else {
            report(join(path, key), "expected an array of strings, found \(value.typeName)", fix: hint)
            return nil
        }
        var strings: [String] = []
        for (index, item) in items.enumerated() {
            guard case .string(let text) = item else {
                report("\(join(path, key))[\(index)]", "expected a string, found \(describe(item))", fix: hint)
                continue
            }
            strings.append(text)
        }
        return strings
    }

    mutating func stringMap(_ object: [String: JSONValue], _ key: String, at path: String) -> [String: String]? {
        guard let value = object[key], value != .null else { return nil }
        guard case .object(let entries) = value else {
            report(join(path, key), "expected an object of strings, found \(value.typeName)",
                   fix: "write it as { \"NAME\": \"value\" }")
            return nil
        }
        var map: [String: String] = [:]
        for (name, item) in entries {
            switch item {
            case .string(let text): map[name] = text
            case .number(let number): map[name] = number.rounded() == number ? String(Int(number)) : String(number)
            case .bool(let flag): map[name] = String(flag)
            default:
                report(join(join(path, key), name), "expected a string, found \(item.typeName)",
                       fix: "give the variable's value as a string")
            }
        }
        return map
    }

    func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    private func describe(_ value: JSONValue) -> String {
        switch value {
        case .string(let text): "\(value.typeName) \"\(text)\""
        case .number(let number): "\(number.rounded() == number ? String(Int(number)) : String(number))"
        case .bool(let flag): "\(flag)"
        default: value.typeName
        }
    }

    /// The allowed key nearest to a misspelled one, if it is near enough to be a typo.
    static func closest(to key: String, in candidates: [String]) -> String? {
        let scored = candidates.map { ($0, editDistance(key.lowercased(), $0.lowercased())) }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= max(2, key.count / 3) else { return nil }
        return best.0
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where !b.isEmpty {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return a.isEmpty ? b.count : previous[b.count]
    }
}
