import FleetTestSupport
import Foundation
import NIOCore
import Synchronization
import Testing
@testable import FleetConfig
@testable import FleetUpstream
@testable import FleetCore
@testable import FleetClient

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
            #expect(load.completed.withLock { $0 } > 10, "there was load during the restart")

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
