import FleetTestSupport
import Foundation
import Testing
@testable import FleetConfig

@Suite("fleet.json examples against the schema and the parser")
struct SchemaExamplesTests {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    var schema: JSONValue {
        get throws { try JSONValue.parse(Data(contentsOf: root.appendingPathComponent("docs/fleet.schema.json"))) }
    }

    /// Every ```json block of the README and docs/ that is a fleet.json (its keys are fleet.json's top-level
    /// keys), with where it is. A fragment without `models` gets a stand-in model, as its text says "add to yours".
    func examples() throws -> [(place: String, json: JSONValue)] {
        var found: [(String, JSONValue)] = []
        let docs = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("docs").path)
            .filter { $0.hasSuffix(".md") }.map { "docs/" + $0 } + ["README.md"]
        for file in docs.sorted() {
            let text = try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8)
            for (index, block) in text.components(separatedBy: "```json\n").dropFirst().enumerated() {
                guard let end = block.range(of: "\n```") else { continue }
                let body = String(block[..<end.lowerBound])
                guard case .object(var object)? = try? JSONValue.parse(Data(body.utf8)),
                      !object.isEmpty, Set(object.keys).isSubset(of: FleetConfig.controllerKeys) else { continue }
                if object["models"] == nil { object["models"] = .object(["m": .object(["path": .string("m.gguf")])]) }
                found.append(("\(file) json block \(index + 1)", .object(object)))
            }
        }
        return found
    }

    @Test func everyDocumentedFleetJSONValidatesAgainstTheSchemaAndTheParser() throws {
        let schema = try self.schema
        let examples = try examples()
        #expect(examples.count >= 3, "the docs have fleet.json examples: found \(examples.map(\.place))")
        for example in examples {
            let problems = SchemaValidator.errors(example.json, schema)
            #expect(problems.isEmpty, "\(example.place) against the schema: \(problems)")
            let data = try JSONEncoder().encode(example.json)
            do {
                _ = try FleetConfig.decode(data, source: example.place, baseDirectory: "/", checkFiles: false)
            } catch {
                Issue.record("\(example.place) against fleet's parser: \(error)")
            }
        }
    }

    @Test func theRepositoryFleetJSONValidatesAgainstTheSchema() throws {
        let json = try JSONValue.parse(Data(contentsOf: root.appendingPathComponent("fleet.json")))
        #expect(SchemaValidator.errors(json, try schema).isEmpty)
        guard case .object(let top) = json else { Issue.record("fleet.json is not an object"); return }
        #expect(top["$schema"] == .string("docs/fleet.schema.json"), "editors find the schema from the file")
    }

    @Test func theValidatorCatchesWhatTheSchemaForbids() throws {
        let schema = try self.schema
        let bad = [
            #"{ "models": { "m": { "path": "m.gguf", "replica": 2 } } }"#,       // unknown key
            #"{ "models": { "m": { "path": "m.gguf", "replicas": "two" } } }"#,  // wrong type
            #"{ "listen": 8090, "models": { "m": { "path": "m.gguf" } } }"#,     // not host:port
            #"{ "models": { "m": { "path": "m.gguf", "policy": "random" } } }"#, // not in the enum
            #"{ "apiKeys": ["short"], "models": { "m": { "path": "m.gguf" } } }"#, // too short a key
            #"{}"#,                                                              // models missing
        ]
        for text in bad {
            #expect(!SchemaValidator.errors(try JSONValue.parse(Data(text.utf8)), schema).isEmpty, "\(text) is refused")
        }
        let good = #"{ "models": { "m": { "path": "m.gguf", "replicas": 2, "policy": "leastBusy" } } }"#
        #expect(SchemaValidator.errors(try JSONValue.parse(Data(good.utf8)), schema).isEmpty)
    }
}
