import FleetTestSupport
import Foundation
import NIOCore
import Synchronization
import Testing
@testable import FleetClient
@testable import FleetConfig
@testable import FleetCore
@testable import FleetRouting
@testable import FleetServer
@testable import FleetSupervision
@testable import FleetUpstream

/// `fleet restart`: replicas are replaced one by one while requests keep coming, and none fails.
@Suite("hot-swap restart over fake servers", .timeLimit(.minutes(3)))
struct HotSwapTests {
    let directory = temporaryDirectory()

    func twoModels() -> FleetConfig {
        fakeFleetConfig(directory: directory, args: ["--fake-tokens", "10", "--fake-token-delay", "0.02", "--parallel", "8"],
                        replicas: 2) {
            $0.models[0].parallel = 8
            var other = $0.models[0]
            other.name = "other"
            other.replicas = 1
            $0.models.append(other)
        }
    }

    @Test func restartUnderLoadFailsNoRequestAndOnlyTheRestartedModelMoves() async throws {
        try await withController(twoModels()) { url, control in
            let before = try await control.status().instances
            let otherPid = before.first { $0.model == "other" }?.pid
            let oldPids = Set(before.filter { $0.model == "fake" }.compactMap(\.pid))
            let oldPorts = Set(before.filter { $0.model == "fake" }.compactMap(\.port))

            let load = LoadTally()
            let result = try await UpstreamClient.with { client in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in 0..<6 {
                        group.addTask {
                            var index = 0
                            while !load.stop.load(ordering: .relaxed) {
                                index += 1
                                let streaming = (worker + index) % 2 == 0
                                do {
                                    let stream = try await client.execute(UpstreamRequest(
                                        method: "POST", url: url + "/v1/completions",
                                        body: Array(#"{"model":"fake","stream":\#(streaming)}"#.utf8)))
                                    var text = ""
                                    for try await chunk in stream.body { text += String(buffer: chunk) }
                                    let complete = streaming ? text.hasSuffix("data: [DONE]\n\n") : text.contains("tok9")
                                    if stream.status != 200 || !complete {
                                        load.failures.withLock { $0.append("HTTP \(stream.status): \(text.suffix(120))") }
                                    }
                                } catch {
                                    load.failures.withLock { $0.append("\(error)") }
                                }
                                load.completed.withLock { $0 += 1 }
                            }
                        }
                    }
                    let outcome = await Result(catching: { () async throws -> RestartResult in
                        try await Task.sleep(for: .milliseconds(300))
                        let result = try await control.restart(model: "fake")
                        try await Task.sleep(for: .milliseconds(300))
                        return result
                    })
                    load.stop.store(true, ordering: .relaxed)  // the load ends whatever happened
                    for try await _ in group {}
                    let result = try outcome.get()
                    return result
                }
            }
            #expect(load.failures.withLock { $0 }.isEmpty, "\(load.failures.withLock { $0 })")
            #expect(load.completed.withLock { $0 } > 20)

            #expect(result.replaced.map(\.replica) == ["fake/0", "fake/1"])
            let counted = try #require(result.requests, "the controller counted the model's requests meanwhile")
            #expect(counted.failed == 0 && counted.served > 0 && result.requestsSummary.hasSuffix("no request failed"))
            let after = try await control.status().instances
            let fake = after.filter { $0.model == "fake" }
            #expect(fake.count == 2 && fake.allSatisfy { $0.state == .ready && $0.generation == 1 })
            #expect(Set(fake.compactMap(\.pid)).isDisjoint(with: oldPids), "every replica of the model has a new process")
            #expect(Set(fake.compactMap(\.port)).isDisjoint(with: oldPorts), "replacements start on new ports")
            #expect(oldPids.allSatisfy { !ProcessProbe.isAlive($0) }, "the old processes are gone")
            #expect(after.first { $0.model == "other" }?.pid == otherPid, "the other model was not touched")
            #expect(fake.allSatisfy { ($0.traffic?.served ?? 0) > 0 }, "the replacements took traffic")
        }
    }

    @Test func aReplacementThatCannotStartLeavesTheOldInstanceServing() async throws {
        // One port for one replica: the replacement finds no free port.
        let config = fakeFleetConfig(directory: directory) {
            let port = TestPorts.block(1).lowerBound
            $0.portRange = port...port
        }
        try await withController(config) { url, control in
            let before = try #require(try await control.status().instances.first)
            await #expect {
                try await control.restart(model: "fake")
            } throws: { error in
                "\(error)".contains("did not become ready") && "\(error)".contains("no free port")
                    && "\(error)".contains("the old instance keeps serving")
            }
            let after = try await control.status().instances
            #expect(after.count == 1 && after[0].pid == before.pid && after[0].state == .ready)
            let response = try await UpstreamClient.with { client in
                try await post(url + "/v1/completions", #"{"model":"fake"}"#, client: client)
            }
            #expect(response.status == 200)
        }
    }

    @Test func restartingAModelThatDoesNotExistSaysWhichDo() async throws {
        try await withController(fakeFleetConfig(directory: directory)) { _, control in
            await #expect { try await control.restart(model: "nope") } throws: {
                "\($0)".contains("model \"nope\" is not in this fleet; it has: fake")
            }
        }
    }
}

/// What a load of requests saw, shared by its workers.
final class LoadTally: Sendable {
    let failures = Mutex<[String]>([])
    let completed = Mutex(0)
    let stop = Atomic<Bool>(false)
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}

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
        let config = fakeFleetConfig(directory: directory, args: ["--fake-completion-status", "503"]) {
            $0.gateway.retries = 0
        }
        try await withController(config) { url, control in
            let failing = Task {
                try await UpstreamClient.with { client in
                    for _ in 0..<6 {
                        _ = try await post(url + "/v1/completions", #"{"model":"fake"}"#, client: client)
                        try await Task.sleep(for: .milliseconds(100))
                    }
                }
            }
            try await Task.sleep(for: .milliseconds(150))
            let result = try await control.restart(model: "fake")
            try await failing.value
            let counted = try #require(result.requests)
            #expect(counted.failed > 0, "\(counted)")
            #expect(!result.requestsSummary.contains("no request failed") && result.requestsSummary.contains("\(counted.failed) failed"))
        }
    }
}
