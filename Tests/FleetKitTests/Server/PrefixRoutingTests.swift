import FleetTestSupport
import Foundation
import Testing
@testable import FleetConfig
@testable import FleetCore
@testable import FleetUpstream
@testable import FleetClient

/// Cache-aware routing end to end over fake servers that keep a prompt cache like llama-server's and report
/// `cache_n` from it: conversations stay where their prefix is, load spills, a restart moves a session.
@Suite("prefix-aware routing over fake servers", .timeLimit(.minutes(3)))
struct PrefixRoutingTests {
    let directory = temporaryDirectory()

    func config(parallel: Int = 2, args: [String] = [], maxWait: Duration = .seconds(30)) -> FleetConfig {
        fakeFleetConfig(directory: directory, args: args, replicas: 2) {
            $0.models[0].policy = .prefixAware
            $0.models[0].prefixRouting.maxWait = maxWait
            $0.models[0].parallel = parallel
            $0.models[0].args += ["--parallel", String(parallel)]
        }
    }

    /// A conversation: a long context of its own, then its turns, resent in full every time.
    struct Conversation {
        var messages: [[String: String]]
        init(_ name: Int) {
            let context = "Session \(name) works on repository \(name * 7919). " +
                String(repeating: "The build uses SwiftPM and the tests run on Linux. ", count: 30)
            messages = [["role": "system", "content": context]]
        }

        mutating func body(asking question: String) -> String {
            messages.append(["role": "user", "content": question])
            let object: [String: Any] = ["model": "fake", "messages": messages, "max_tokens": 8]
            return String(data: try! JSONSerialization.data(withJSONObject: object), encoding: .utf8)!
        }

        mutating func answered(_ response: UpstreamResponse) throws -> (instance: String, cached: Int) {
            let json = try #require(try JSONSerialization.jsonObject(with: Data(response.bodyText.utf8)) as? [String: Any])
            let choice = try #require((json["choices"] as? [[String: Any]])?.first)
            let text = try #require((choice["message"] as? [String: Any])?["content"] as? String)
            messages.append(["role": "assistant", "content": text])
            let usage = try #require(json["usage"] as? [String: Any])
            let cached = (usage["prompt_tokens_details"] as? [String: Any])?["cached_tokens"] as? Int ?? -1
            return (try #require(response.header("X-Fleet-Instance")), cached)
        }
    }

    @Test func everyTurnOfEverySessionLandsWhereItsPrefixIsCached() async throws {
        try await withController(config()) { url, control in
            try await UpstreamClient.with { client in
                var conversations = (0..<4).map(Conversation.init)
                var homes: [Int: String] = [:]
                for turn in 0..<4 {
                    for index in conversations.indices {
                        let response = try await post(url + "/v1/chat/completions",
                                                      conversations[index].body(asking: "Step \(turn): run the tests."), client: client)
                        #expect(response.status == 200)
                        let (instance, cached) = try conversations[index].answered(response)
                        if turn == 0 {
                            homes[index] = instance
                        } else {
                            #expect(instance == homes[index], "session \(index) turn \(turn) moved")
                            #expect(cached > 0, "session \(index) turn \(turn): the replica had its prefix")
                        }
                    }
                }
                #expect(Set(homes.values) == ["fake/0", "fake/1"], "new sessions spread over both replicas")
            }
            let status = try await control.status()
            let cache = try #require(status.models[0].promptCache)
            #expect(cache.hitRatio ?? 0 > 0.5, "\(cache)")
            #expect(status.instances.allSatisfy { ($0.traffic?.promptCache?.cachedTokens ?? 0) > 0 })
            let metrics = try await UpstreamClient.with { try await $0.fetch(UpstreamRequest(url: url + "/metrics")) }.bodyText
            #expect(metrics.contains("fleet_prompt_cache_hit_ratio{model=\"fake\"}"))
            #expect(metrics.contains("fleet_prompt_cached_tokens_total{"))
            #expect(StatusTable.render(status).contains("prompt cache"))
        }
    }

    /// One slot each and slow prompts: the hot session's burst is more than its replica can take. With
    /// `maxWait` 0 no replica ever idles while a request waits; by default one request may wait for each busy
    /// one-slot owner beside an idle replica (half a round of its slots, at least one; for at most what evaluating
    /// its prefix elsewhere would take), never more.
    @Test(arguments: [Duration.zero, .seconds(30)])
    func aHotSessionSpillsToTheOtherReplicaSoNoneIdlesWhileRequestsWait(maxWait: Duration) async throws {
        let mayWait = maxWait == .zero ? 0 : 1
        try await withController(config(parallel: 1, args: ["--fake-prompt-delay", "0.3"], maxWait: maxWait)) { url, control in
            let sampling = Task {
                var violations: [String] = []
                var sawQueue = false
                while !Task.isCancelled {
                    if let status = try? await control.status() {
                        let idle = status.instances.filter { $0.state == .ready && $0.traffic?.inFlight == 0 }
                        if status.models[0].queueDepth > 0 {
                            sawQueue = true
                            if !idle.isEmpty && status.models[0].queueDepth > mayWait { violations.append("\(idle.map(\.id)) idle with \(status.models[0].queueDepth) queued") }
                        }
                    }
                    try? await Task.sleep(for: .milliseconds(15))
                }
                return (violations, sawQueue)
            }
            try await UpstreamClient.with { client in
                var hot = Conversation(99)
                let first = try await post(url + "/v1/chat/completions", hot.body(asking: "start"), client: client)
                let owner = try hot.answered(first).instance
                let burst = hot.body(asking: "go")
                let instances = try await withThrowingTaskGroup(of: String?.self) { group in
                    for _ in 0..<10 {
                        group.addTask { try await post(url + "/v1/chat/completions", burst, client: client).header("X-Fleet-Instance") }
                    }
                    for other in 0..<2 {
                        group.addTask {
                            var conversation = Conversation(other)
                            return try await post(url + "/v1/chat/completions", conversation.body(asking: "hi"), client: client)
                                .header("X-Fleet-Instance")
                        }
                    }
                    return try await group.reduce(into: [String?]()) { $0.append($1) }
                }
                #expect(instances.allSatisfy { $0 != nil }, "every request answered")
                #expect(Set(instances.compactMap { $0 }).count == 2, "the burst spilled beyond its owner \(owner)")
            }
            sampling.cancel()
            let (violations, sawQueue) = await sampling.value
            #expect(sawQueue, "the burst queued (else this test shows nothing)")
            #expect(violations.isEmpty, "\(violations.prefix(3))")
        }
    }

    @Test func aSessionMovesWhenItsReplicaRestartsAndStaysWhereItMoved() async throws {
        // The killed replica stays out of rotation for 3 s before its restart: long enough for a busy machine's
        // status polls to see it gone (a 100 ms restart could come and go between two of them).
        var config = config()
        config.restart.initialDelay = .seconds(3)
        config.restart.maxDelay = .seconds(3)
        try await withController(config) { url, control in
            try await UpstreamClient.with { client in
                var conversation = Conversation(1)
                let first = try conversation.answered(try await post(url + "/v1/chat/completions",
                                                                     conversation.body(asking: "one"), client: client))
                let pid = try #require(try await control.status().instances.first { $0.id == first.instance }?.pid)
                kill(pid, SIGKILL)
                try await eventually("out of rotation") {
                    try await control.status().instances.first { $0.id == first.instance }?.state != .ready
                }
                let moved = try conversation.answered(try await post(url + "/v1/chat/completions",
                                                                     conversation.body(asking: "two"), client: client))
                #expect(moved.instance != first.instance)
                try await eventually("restarted") { try await control.status().readyCount == 2 }
                for turn in 3...4 {
                    let next = try conversation.answered(try await post(url + "/v1/chat/completions",
                                                                        conversation.body(asking: "turn \(turn)"), client: client))
                    #expect(next.instance == moved.instance, "the restarted replica's cache is gone; the session stays")
                    #expect(next.cached > 0)
                }
            }
        }
    }

    @Test func conversationsStayOnUnmanagedEndpointsToo() async throws {
        let (first, firstURL) = try await startFakeEndpoint(["--fake-tokens", "3", "--parallel", "2"])
        defer { first.terminate() }
        let (second, secondURL) = try await startFakeEndpoint(["--fake-tokens", "3", "--parallel", "2"])
        defer { second.terminate() }
        let config = fakeFleetConfig(directory: directory, replicas: 0) {
            $0.models[0].policy = .prefixAware
            $0.models[0].parallel = 2
            $0.models[0].endpoints = [firstURL, secondURL]
        }
        try await withController(config, waitForReady: 2) { url, control in
            try await eventually("both endpoints in rotation") {
                try await control.status().instances.filter { $0.traffic?.inRotation == true }.count == 2
            }
            try await UpstreamClient.with { client in
                var conversations = (0..<2).map(Conversation.init)
                var homes: [Int: String] = [:]
                for turn in 0..<3 {
                    for index in conversations.indices {
                        let response = try await post(url + "/v1/chat/completions",
                                                      conversations[index].body(asking: "turn \(turn)"), client: client)
                        let (instance, cached) = try conversations[index].answered(response)
                        if turn == 0 { homes[index] = instance } else {
                            #expect(instance == homes[index])
                            #expect(cached > 0)
                        }
                    }
                }
                #expect(Set(homes.values) == [firstURL, secondURL])
            }
        }
    }

    @Test func aSessionKeyKeepsRequestsOnOneReplicaUnderLeastBusy() async throws {
        let config = fakeFleetConfig(directory: directory, replicas: 2) { $0.models[0].policy = .leastBusy }
        try await withController(config) { url, _ in
            try await UpstreamClient.with { client in
                func instance(_ body: String, headers: [(String, String)] = []) async throws -> String? {
                    try await client.fetch(UpstreamRequest(method: "POST", url: url + "/v1/completions",
                                                           headers: [("Content-Type", "application/json")] + headers,
                                                           body: Array(body.utf8))).header("X-Fleet-Instance")
                }
                for (body, headers) in [(#"{"model":"fake","prompt":"x"}"#, [("X-Session-Id", "s-1")]),
                                        (#"{"model":"fake","prompt":"x","prompt_cache_key":"k-1"}"#, []),
                                        (#"{"model":"fake","prompt":"x","user":"u-1"}"#, [])] {
                    var seen: Set<String?> = []
                    for _ in 0..<6 { seen.insert(try await instance(body, headers: headers)) }
                    #expect(seen.count == 1, "\(body) \(headers): \(seen)")
                }
                // Without a key, least-busy with idle replicas alternates (ties go round-robin).
                var seen: Set<String?> = []
                for _ in 0..<4 { seen.insert(try await instance(#"{"model":"fake","prompt":"x"}"#)) }
                #expect(seen.count == 2)
            }
        }
    }

    @Test func thePolicyIsSwitchedThroughTheControlAPIAndShownInStatus() async throws {
        try await withController(fakeFleetConfig(directory: directory, replicas: 1)) { url, control in
            try await UpstreamClient.with { client in
                let switched = try await post(url + "/control/policy", #"{"model":"fake","policy":"prefixAware"}"#, client: client)
                #expect(switched.status == 200)
                let change = try JSONSerialization.jsonObject(with: Data(switched.bodyText.utf8)) as? [String: String]
                #expect(change == ["model": "fake", "policy": "prefixAware", "previous": "roundRobin"])
                #expect(try await control.status().models[0].policy == "prefixAware")
                let unknownPolicy = try await post(url + "/control/policy", #"{"model":"fake","policy":"random"}"#, client: client)
                #expect(unknownPolicy.status == 400 && unknownPolicy.bodyText.contains("prefixAware"))
                let unknownModel = try await post(url + "/control/policy", #"{"model":"gpt","policy":"leastBusy"}"#, client: client)
                #expect(unknownModel.status == 404 && unknownModel.bodyText.contains("fake"))
            }
        }
    }
}
