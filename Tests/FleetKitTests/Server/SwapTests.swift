import FleetTestSupport
import Foundation
import NIOCore
import Synchronization
import Testing
@testable import FleetConfig
@testable import FleetUpstream
@testable import FleetCore
@testable import FleetClient

@Suite("model swap over fake servers", .timeLimit(.minutes(2)))
struct SwapTests {
    let directory = temporaryDirectory()

    func writeFleetJSON(_ config: FleetConfig) throws -> FleetConfig {
        var config = config
        let file = directory + "/fleet.json"
        try """
            {
              "models": {
                "fake": { "path": "model.gguf", "replicas": 2 }
              }
            }
            """.write(toFile: file, atomically: true, encoding: .utf8)
        config.source = file
        return config
    }

    @Test func swapMovesEveryReplicaToTheNewFileAndUpdatesFleetJSON() async throws {
        let config = try writeFleetJSON(fakeFleetConfig(directory: directory, replicas: 2))
        let newModel = fakeGGUF(in: directory, name: "model-v2.gguf")
        try await withController(config) { url, control in
            let before = Set(try await control.status().instances.compactMap(\.pid))
            let result = try await control.swap(model: "fake", path: newModel)
            #expect(result.replaced.count == 2)
            #expect(result.configUpdate?.hasPrefix("updated") == true, "\(result.configUpdate ?? "")")
            let after = try await control.status().instances
            #expect(after.count == 2 && after.allSatisfy { $0.state == .ready && $0.generation == 1 })
            #expect(Set(after.compactMap(\.pid)).isDisjoint(with: before))
            for pid in after.compactMap(\.pid) {
                let command = try String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)
                #expect(command.contains("model-v2.gguf"), "the replacement runs the new file")
            }
            let file = try String(contentsOfFile: directory + "/fleet.json", encoding: .utf8)
            #expect(file.contains(#""path": "model-v2.gguf""#) && file.contains(#""replicas": 2"#), "\(file)")
            // A restart after the swap keeps the new file.
            _ = try await control.restart(model: "fake")
            let pid = try #require(try await control.status().instances.first?.pid)
            #expect(try String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8).contains("model-v2.gguf"))
            _ = url
        }
    }

    @Test func swapToAFileThatIsNotAModelChangesNothing() async throws {
        let config = try writeFleetJSON(fakeFleetConfig(directory: directory, replicas: 2))
        let bad = directory + "/notes.txt"
        _ = FileManager.default.createFile(atPath: bad, contents: Data("hello".utf8))
        try await withController(config) { url, control in
            let before = try await control.status().instances.compactMap(\.pid)
            await #expect {
                try await control.swap(model: "fake", path: bad)
            } throws: { "\($0)".contains("is not a GGUF file") && "\($0)".contains("nothing was changed") }
            #expect(try await control.status().instances.compactMap(\.pid) == before, "the old instances still serve")
            let file = try String(contentsOfFile: directory + "/fleet.json", encoding: .utf8)
            #expect(file.contains(#""path": "model.gguf""#))
            let response = try await UpstreamClient.with { try await post(url + "/v1/completions", #"{"model":"fake"}"#, client: $0) }
            #expect(response.status == 200)
        }
    }

    @Test func aRestartSaysHowManyRequestsFailedWhenSomeDid() async throws {
        // Every completion of this model fails (503 from the instance): the restart must not claim otherwise.
        // The replacement loads for a second, so failures land inside the restart however the machine schedules
        // the requests: the instance is suspended at its first failure and readmitted by the next health check
        // (every 200 ms), and a request queued meanwhile may only be answered after a short restart ended.
        let config = fakeFleetConfig(directory: directory,
                                     args: ["--fake-completion-status", "503", "--fake-loading-delay", "1"]) {
            $0.gateway.retries = 0
        }
        try await withController(config) { url, control in
            // Requests every 50 ms for as long as the restart lasts, however slow the machine.
            let failing = Task {
                try await UpstreamClient.with { client in
                    while !Task.isCancelled {
                        _ = try? await post(url + "/v1/completions", #"{"model":"fake"}"#, client: client)
                        try? await Task.sleep(for: .milliseconds(50))
                    }
                }
            }
            try await Task.sleep(for: .milliseconds(150))
            let result = try await control.restart(model: "fake")
            failing.cancel()
            _ = try? await failing.value
            let counted = try #require(result.requests)
            #expect(counted.failed > 0, "\(counted)")
            #expect(!result.requestsSummary.contains("no request failed") && result.requestsSummary.contains("\(counted.failed) failed"))
        }
    }
}
