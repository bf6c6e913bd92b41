import Foundation
import FleetTestSupport
import Testing
@testable import FleetConfig

@Suite("docs/fleet.schema.json")
struct SchemaTests {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func properties(_ object: [String: Any]?) -> Set<String> {
        Set((object?["properties"] as? [String: Any])?.keys.map { $0 } ?? [])
    }

    @Test func schemaNamesExactlyTheKeysTheParserAccepts() throws {
        let data = try Data(contentsOf: root.appendingPathComponent("docs/fleet.schema.json"))
        let schema = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let top = schema["properties"] as? [String: Any]
        #expect(properties(schema) == Set(FleetConfig.controllerKeys))
        #expect(properties(top?["healthCheck"] as? [String: Any]) == Set(FleetConfig.healthCheckKeys))
        #expect(properties(top?["restart"] as? [String: Any]) == Set(FleetConfig.restartKeys))
        #expect(properties(top?["gateway"] as? [String: Any]) == Set(FleetConfig.gatewayKeys))
        let model = (top?["models"] as? [String: Any])?["additionalProperties"] as? [String: Any]
        #expect(properties(model) == Set(FleetConfig.modelKeys))
        #expect(properties((model?["properties"] as? [String: Any])?["defaults"] as? [String: Any]) == Set(FleetConfig.defaultsKeys))
        #expect(properties((model?["properties"] as? [String: Any])?["queue"] as? [String: Any]) == Set(FleetConfig.queueKeys))
    }

    @Test func everyKeyIsDocumented() throws {
        let doc = try String(contentsOf: root.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
        let keys = FleetConfig.controllerKeys + FleetConfig.healthCheckKeys.map { "healthCheck.\($0)" }
            + FleetConfig.restartKeys.map { "restart.\($0)" } + FleetConfig.gatewayKeys.map { "gateway.\($0)" }
            + FleetConfig.modelKeys + FleetConfig.queueKeys.map { "queue.\($0)" }
        for key in keys {
            #expect(doc.contains("| `\(key)` |"), "docs/configuration.md has a row for \(key)")
        }
    }
}
