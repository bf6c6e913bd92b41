import FleetTestSupport
import Foundation
import Testing
@testable import FleetConfig
@testable import FleetUpstream
@testable import FleetCore
@testable import FleetClient

/// `start: "onDemand"` and `idleTimeout`: models that run only while they are used.
@Suite("on demand, idle and memory budget over fake servers", .timeLimit(.minutes(2)))
struct OnDemandTests {
    let directory = temporaryDirectory()

    @Test func anOnDemandModelStartsWithItsFirstRequestWhichSucceeds() async throws {
        let config = fakeFleetConfig(directory: directory) { $0.models[0].startOnDemand = true }
        try await withController(config, waitForReady: 0) { url, control in
            let before = try await control.status().instances
            #expect(before.map(\.state) == [.idle] && before[0].pid == nil, "nothing runs before the first request")
            let response = try await UpstreamClient.with { try await post(url + "/v1/completions", #"{"model":"fake"}"#, client: $0) }
            #expect(response.status == 200, "the first request waited for the start and got its answer")
            let after = try await control.status().instances
            #expect(after.count == 1 && after[0].state == .ready && after[0].pid != nil)
        }
    }

    @Test func anIdleModelIsStoppedAndStartsAgainOnTheNextRequest() async throws {
        // Each answer takes about a second (5 tokens, 0.2 s apart), so the pid is read while the model is busy
        // and cannot be idle, whatever the machine's speed.
        let config = fakeFleetConfig(directory: directory, args: ["--fake-tokens", "5", "--fake-token-delay", "0.2"]) {
            $0.models[0].idleTimeout = .seconds(1)
        }
        try await withController(config, waitForReady: 0) { url, control in
            try await UpstreamClient.with { client in
                async let first = post(url + "/v1/completions", #"{"model":"fake"}"#, client: client)
                try await eventually("busy") { try await control.status().instances.first?.traffic?.inFlight == 1 }
                let pid = try #require(try await control.status().instances.first?.pid)
                #expect(try await first.status == 200)
                try await eventually("idle") { try await control.status().instances.map(\.state) == [.idle] }
                #expect(!ProcessProbe.isAlive(pid), "the idle instance's process is gone")
                #expect(try await control.logs(model: "fake", replica: 0, lines: 1) == "--- fleet: stopped ---\n",
                        "an idle model's log is the last run's, ending with its stop")
                async let again = post(url + "/v1/completions", #"{"model":"fake"}"#, client: client)
                try await eventually("busy again") { try await control.status().instances.first?.traffic?.inFlight == 1 }
                let now = try await control.status().instances
                #expect(now.count == 1 && now[0].state == .ready && now[0].pid != nil && now[0].pid != pid)
                #expect(try await again.status == 200)
            }
        }
    }

    /// Three on-demand models of 1 GiB each (by their `memory`) under a 2 GiB budget: at most two run at once.
    /// Answers stream 40 tokens 0.2 s apart (8 s: long enough that a loaded machine still sees a third model wait
    /// while two answer; at 3 s the full suite sometimes missed it); `max_tokens: 1` makes one quick.
    func threeModelsForTwoSlotsOfMemory() -> FleetConfig {
        fakeFleetConfig(directory: directory, args: ["--fake-tokens", "40", "--fake-token-delay", "0.2"]) { config in
            var template = config.models[0]
            template.startOnDemand = true
            template.memory = 1 << 30
            config.models = ["a", "b", "c"].map { name in
                var model = template
                model.name = name
                return model
            }
            config.memoryBudget = 2 << 30
        }
    }

    @Test func startingAnOnDemandModelEvictsTheLeastRecentlyUsedIdleOne() async throws {
        try await withController(threeModelsForTwoSlotsOfMemory(), waitForReady: 0) { url, control in
            try await UpstreamClient.with { client in
                func quick(_ model: String) async throws -> Int {
                    try await post(url + "/v1/completions", #"{"model":"\#(model)","max_tokens":1}"#, client: client).status
                }
                func states() async throws -> [String: InstanceState] {
                    Dictionary(uniqueKeysWithValues: try await control.status().instances.map { ($0.model, $0.state) })
                }
                #expect(try await quick("a") == 200)
                #expect(try await quick("b") == 200)
                #expect(try await states() == ["a": .ready, "b": .ready, "c": .idle])
                // c needs room: a was used longest ago, so a goes.
                #expect(try await quick("c") == 200)
                #expect(try await states() == ["a": .idle, "b": .ready, "c": .ready])

                // Now b, the least recently used, is busy with a slow answer: c goes instead, and b's answer
                // completes.
                async let slow = post(url + "/v1/completions", #"{"model":"b"}"#, client: client)
                try await eventually("b busy") {
                    try await control.status().instances.first { $0.model == "b" }?.traffic?.inFlight == 1
                }
                #expect(try await quick("a") == 200)
                #expect(try await states() == ["a": .ready, "b": .ready, "c": .idle])
                #expect(try await slow.status == 200)
            }
        }
    }

    @Test func aStartThatCannotMakeRoomWaitsAndSaysWhyThenStartsWhenMemoryFrees() async throws {
        try await withController(threeModelsForTwoSlotsOfMemory(), waitForReady: 0) { url, control in
            try await UpstreamClient.with { client in
                // a and b both busy: c cannot start yet.
                async let a = post(url + "/v1/completions", #"{"model":"a"}"#, client: client)
                async let b = post(url + "/v1/completions", #"{"model":"b"}"#, client: client)
                try await eventually("a and b busy") {
                    try await control.status().instances.filter { $0.traffic?.inFlight == 1 }.count == 2
                }
                async let c = post(url + "/v1/completions", #"{"model":"c","max_tokens":1}"#, client: client)
                try await eventually("c waits for memory") {
                    try await control.status().instances.first { $0.model == "c" }?.lastError?.contains("waiting for memory") == true
                }
                let (first, second, third) = try await (a.status, b.status, c.status)
                #expect(first == 200 && second == 200)
                #expect(third == 200, "c started once a or b was idle and could be stopped")
            }
        }
    }

    @Test func aRestartWithoutRoomForASecondCopyRestartsInPlace() async throws {
        // 1 GiB per instance under a 1.5 GiB budget: the replacement cannot load beside the old instance.
        let config = fakeFleetConfig(directory: directory) {
            $0.models[0].memory = 1 << 30
            $0.memoryBudget = 3 << 29
        }
        try await withController(config) { url, control in
            let before = try #require(try await control.status().instances.first?.pid)
            let result = try await control.restart(model: "fake")
            #expect(result.replaced.count == 1 && result.replaced[0].oldPid == before)
            let after = try await control.status().instances
            #expect(after.count == 1 && after[0].state == .ready && after[0].pid != before)
            #expect(!ProcessProbe.isAlive(before))
            let answer = try await UpstreamClient.with { try await post(url + "/v1/completions", #"{"model":"fake"}"#, client: $0) }
            #expect(answer.status == 200)
        }
    }
}
