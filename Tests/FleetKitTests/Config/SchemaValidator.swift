import FleetTestSupport
import Foundation
import Testing
@testable import FleetConfig

/// A JSON Schema (draft 2020-12) validator for the keywords docs/fleet.schema.json uses: `type`, `properties`,
/// `additionalProperties`, `required`, `items`, `oneOf`, `anyOf`, `enum`, `pattern`, `minimum`, `maximum`,
/// `minLength`, `minProperties`, `propertyNames`. An unknown keyword fails loudly, so the schema cannot grow a
/// rule this check silently ignores. Works on fleet's own `JSONValue`, which keeps booleans and numbers apart.
struct SchemaValidator {
    static let annotations: Set<String> = ["$schema", "$id", "title", "description", "default"]
    static let known: Set<String> = ["type", "properties", "additionalProperties", "required", "items", "oneOf", "anyOf",
                                     "enum", "pattern", "minimum", "maximum", "minLength", "minProperties", "propertyNames"]

    /// The problems of `value` against `schema`, each with its JSON path.
    static func errors(_ value: JSONValue, _ schema: JSONValue, at path: String = "$") -> [String] {
        guard case .object(let rules) = schema else { return ["\(path): a schema must be an object"] }
        var found: [String] = []
        for key in rules.keys where !annotations.contains(key) && !known.contains(key) {
            found.append("\(path): the validator does not know the keyword \(key)")
        }
        if let type = rules["type"] {
            let types: [String]
            switch type {
            case .string(let one): types = [one]
            case .array(let many): types = many.compactMap { if case .string(let t) = $0 { t } else { nil } }
            default: types = []
            }
            if !types.contains(where: { matches(value, type: $0) }) {
                return found + ["\(path): expected \(types.joined(separator: " or ")), found \(value.typeName)"]
            }
        }
        if case .array(let options)? = rules["enum"], !options.contains(value) {
            found.append("\(path): \(value) is not one of \(options)")
        }
        if case .string(let text) = value {
            if case .string(let pattern)? = rules["pattern"], text.range(of: pattern, options: .regularExpression) == nil {
                found.append("\(path): \"\(text)\" does not match \(pattern)")
            }
            if case .number(let minimum)? = rules["minLength"], Double(text.count) < minimum {
                found.append("\(path): shorter than \(minimum)")
            }
        }
        if case .number(let number) = value {
            if case .number(let minimum)? = rules["minimum"], number < minimum { found.append("\(path): \(number) < \(minimum)") }
            if case .number(let maximum)? = rules["maximum"], number > maximum { found.append("\(path): \(number) > \(maximum)") }
        }
        if case .object(let object) = value {
            var properties: [String: JSONValue] = [:]
            if case .object(let declared)? = rules["properties"] { properties = declared }
            if case .array(let required)? = rules["required"] {
                for case .string(let key) in required where object[key] == nil { found.append("\(path): \(key) is required") }
            }
            if case .number(let minimum)? = rules["minProperties"], Double(object.count) < minimum {
                found.append("\(path): fewer than \(minimum) properties")
            }
            for (key, child) in object {
                if let names = rules["propertyNames"] { found += errors(.string(key), names, at: "\(path) key \(key)") }
                if let rule = properties[key] {
                    found += errors(child, rule, at: "\(path).\(key)")
                } else if let extra = rules["additionalProperties"] {
                    if extra == .bool(false) {
                        found.append("\(path): unknown property \(key)")
                    } else if case .object = extra {
                        found += errors(child, extra, at: "\(path).\(key)")
                    }
                }
            }
        }
        if case .array(let items) = value, let rule = rules["items"] {
            for (index, item) in items.enumerated() { found += errors(item, rule, at: "\(path)[\(index)]") }
        }
        if case .array(let options)? = rules["oneOf"] {
            let passing = options.filter { errors(value, $0, at: path).isEmpty }.count
            if passing != 1 { found.append("\(path): matches \(passing) of oneOf's \(options.count) schemas, not exactly one") }
        }
        if case .array(let options)? = rules["anyOf"], !options.contains(where: { errors(value, $0, at: path).isEmpty }) {
            found.append("\(path): matches none of anyOf")
        }
        return found
    }

    static func matches(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("object", .object), ("array", .array), ("string", .string), ("boolean", .bool), ("null", .null),
             ("number", .number): true
        case ("integer", .number(let number)): number.rounded() == number
        default: false
        }
    }
}
