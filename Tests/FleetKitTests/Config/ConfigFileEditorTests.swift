import Foundation
import FleetTestSupport
import Testing
@testable import FleetConfig

@Suite("editing fleet.json in place")
struct ConfigFileEditorTests {
    @Test func onlyTheModelsPathChanges() throws {
        let text = """
            {
              "listen": "127.0.0.1:8090",
              "models": {
                "other": { "path": "keep.gguf", "args": ["--x", "{\\"path\\": 1}"] },
                "gemma": {
                  "aliases": ["g"],
                  "path":   "models/old.gguf",
                  "replicas": 2
                }
              }
            }
            """
        let edited = try ConfigFileEditor.settingModelPath(in: text, model: "gemma", to: "models/new \"v2\".gguf")
        #expect(edited == text.replacingOccurrences(of: #""models/old.gguf""#, with: #""models/new \"v2\".gguf""#))
        #expect(throws: ConfigFileEditor.EditError.self) {
            try ConfigFileEditor.settingModelPath(in: text, model: "absent", to: "x")
        }
    }
}
