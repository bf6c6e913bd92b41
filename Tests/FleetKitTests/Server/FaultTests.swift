import FleetTestSupport
import Foundation
import Glibc
import NIOCore
import Testing
@testable import FleetUpstream
@testable import FleetCore
@testable import FleetConfig
@testable import FleetClient

/// What a client sees when things break underneath it: never a cut answer that looks whole, never a request
/// lost to a hung or killed instance that another could have served.
@Suite("faults under load over fake servers", .timeLimit(.minutes(3)))
struct FaultTests {
    let directory = temporaryDirectory()

    /// Reads a stream to its end: the text, and whether the transfer broke (the body ended without its final chunk).
    func readStream(_ url: String, model: String = "fake", client: UpstreamClient,
                    onFirstChunk: @Sendable () async -> Void = {}) async throws -> (text: String, broke: Bool, status: Int) {
        let stream = try await client.execute(UpstreamRequest(
            method: "POST", url: url + "/v1/chat/completions",
            body: Array(#"{"model":"\#(model)","stream":true}"#.utf8), totalTimeout: .seconds(60)))
        var text = ""
        do {
            for try await chunk in stream.body {
                if text.isEmpty { await onFirstChunk() }
                text += String(buffer: chunk)
            }
            return (text, false, stream.status)
        } catch {
            return (text, true, stream.status)
        }
    }

    @Test func aReplicaKilledMidStreamEndsItsStreamWithAnError() async throws {
        let config = fakeFleetConfig(directory: directory, args: ["--fake-tokens", "40", "--fake-token-delay", "0.05"])
        try await withController(config) { url, control in
            let pid = try #require(try await control.status().instances[0].pid)
            let result = try await UpstreamClient.with { client in
                try await readStream(url, client: client) { _ = kill(pid, SIGKILL) }
            }
            #expect(result.status == 200 && result.broke, "the body ends without its final chunk")
            #expect(!result.text.contains("[DONE]"))
            #expect(result.text.contains(#""code":"upstream_cut""#), "an error event the client raises: \(result.text)")
        }
    }

    @Test func anInstanceThatDiesAfterItsHeadBeforeAnyByteIsFailedOver() async throws {
        // One endpoint that sends its head and dies, one managed replica that answers: every request is answered.
        let (dying, endpoint) = try await startFakeEndpoint(["--fake-die-after-head"])
        defer { dying.terminate() }
        let config = fakeFleetConfig(directory: directory) { $0.models[0].endpoints = [endpoint] }
        try await withController(config, waitForReady: 2) { url, control in  // the replica and the endpoint
            try await eventually("the endpoint in rotation") {
                try await control.status().instances.contains { !$0.managed && $0.state == .ready }
            }
            let results = try await UpstreamClient.with { client in
                var results: [(text: String, broke: Bool, status: Int)] = []
                for _ in 0..<2 { results.append(try await readStream(url, client: client)) }
                return results
            }
            for result in results {
                #expect(result.status == 200 && !result.broke && result.text.hasSuffix("data: [DONE]\n\n"), "\(result)")
            }
            #expect(dying.waitUntilExit() == 4, "the endpoint did die after its head")
        }
    }

    /// 8 tokens: the head never left the curl thread. 10,000 tokens (79 KB): the head went to the gateway once half
    /// the window (32 KiB) had come, and the answer broke while the gateway read the rest.
    @Test(arguments: [8, 10_000])
    func aNonStreamedAnswerCutInItsMiddleIsFailedOverNotSentHalf(tokens: Int) async throws {
        // The endpoint sends its head and half the answer, then dies: nothing reached the client yet (a non-streamed
        // answer is read whole before it is sent), so the replica answers instead.
        let answer = ["--fake-tokens", String(tokens), "--fake-token-delay", "0"]
        let (dying, endpoint) = try await startFakeEndpoint(["--fake-die-mid-body"] + answer)
        defer { dying.terminate() }
        let config = fakeFleetConfig(directory: directory, args: answer) { $0.models[0].endpoints = [endpoint] }
        try await withController(config, waitForReady: 2) { url, control in
            try await eventually("the endpoint in rotation") {
                try await control.status().instances.contains { !$0.managed && $0.state == .ready }
            }
            let responses = try await UpstreamClient.with { client in
                var responses: [UpstreamResponse] = []
                for _ in 0..<2 {
                    responses.append(try await post(url + "/v1/completions", #"{"model":"fake","max_tokens":\#(tokens)}"#,
                                                    client: client))
                }
                return responses
            }
            for response in responses {
                #expect(response.status == 200 && response.bodyText.hasSuffix("}}")
                        && response.bodyText.contains("tok\(tokens - 1)\""), "\(response.status) \(response.bodyText.suffix(300))")
                #expect(response.header("X-Fleet-Instance") == "fake/0", "answered by the replica")
            }
            #expect(dying.waitUntilExit() == 5, "the endpoint did die in the middle of its body")
        }
    }

    @Test func aHungInstanceLeavesRotationItsRequestsFailOverOrEndWithAnErrorAndItIsRestarted() async throws {
        // 300 tokens, 50 ms apart: the stream is still under way when its instance hangs, however loaded the
        // machine is (the requests with max_tokens 60 take 3 s).
        let config = fakeFleetConfig(directory: directory, args: ["--fake-tokens", "300", "--fake-token-delay", "0.05"],
                                     replicas: 2) {
            $0.models[0].parallel = 2
            $0.healthCheck.timeout = .milliseconds(300)
            $0.healthCheck.restartAfter = 4
            $0.gateway.retries = 2
        }
        try await withController(config) { url, control in
            try await UpstreamClient.with { client in
                // Round-robin puts the 1st and 3rd request on one replica: a stream, then a non-streamed request.
                let gotToken = AsyncStream<Void>.makeStream()
                async let stream = readStream(url, client: client) { gotToken.continuation.yield() }
                var tokens = gotToken.stream.makeAsyncIterator()
                _ = await tokens.next()
                func inFlight() async throws -> Int {
                    try await control.status().instances.reduce(0) { $0 + ($1.traffic?.inFlight ?? 0) }
                }
                async let other = post(url + "/v1/completions", #"{"model":"fake","max_tokens":60}"#, client: client)
                try await eventually("the second request on the other replica") { try await inFlight() == 2 }
                async let plain = post(url + "/v1/completions", #"{"model":"fake","max_tokens":60}"#, client: client)
                try await eventually("two requests on one replica") {
                    try await control.status().instances.contains { $0.traffic?.inFlight == 2 }
                }
                let hung = try #require(try await control.status().instances.first { $0.traffic?.inFlight == 2 })
                let pid = try #require(hung.pid)
                _ = kill(pid, SIGSTOP)
                defer { _ = kill(pid, SIGCONT) }
                try await eventually(timeout: .seconds(5), "out of rotation after one failed probe") {
                    try await control.status().instances.first { $0.id == hung.id }?.state == .unhealthy
                }
                let (streamed, answered, short) = try await (stream, plain, other)
                #expect(short.status == 200)
                #expect(answered.status == 200 && answered.bodyText.contains("choices"),
                        "the non-streamed request had no byte yet: another replica answered it")
                #expect(streamed.broke && streamed.text.contains(#""code":"upstream_cut""#) && !streamed.text.contains("[DONE]"),
                        "the stream that was under way ends with an error: \(streamed.text.suffix(300))")
                try await eventually(timeout: .seconds(20), "declared dead, killed and restarted") {
                    let now = try await control.status().instances.first { $0.id == hung.id }
                    return now?.state == .ready && now?.pid != pid
                }
                #expect(!ProcessProbe.isAlive(pid), "the hung process was killed")
                let lastError = try await control.status().instances.first { $0.id == hung.id }?.lastError ?? ""
                #expect(lastError.contains("health checks"), "\(lastError)")
            }
        }
    }

    @Test func anInstanceWhoseHealthChecksTimeOutWhileItsAnswersFlowIsKeptAndOnlyKilledOnceNothingFlows() async throws {
        // 200 tokens 20 ms apart: a 4 s stream, through checks that each time out (after 500 ms) and three of
        // which in a row would declare the instance dead; a 1,000-stream storm on a slow machine did that once.
        let config = fakeFleetConfig(directory: directory, args: ["--fake-tokens", "200", "--fake-token-delay", "0.02"]) {
            $0.healthCheck.interval = .milliseconds(200)
            $0.healthCheck.timeout = .milliseconds(500)
            $0.healthCheck.restartAfter = 3
        }
        try await withController(config) { url, control in
            let before = try await control.status().instances[0]
            let pid = try #require(before.pid)
            let base = "http://127.0.0.1:\(try #require(before.port))"
            try await UpstreamClient.with { client in
                let result = try await readStream(url, client: client) {
                    _ = try? await client.fetch(UpstreamRequest(method: "POST", url: base + "/fake/slow-health?seconds=5"))
                }
                #expect(!result.broke && result.text.contains("[DONE]"), "the stream ends whole: \(result.text.suffix(300))")
                let after = try await control.status().instances[0]
                #expect(after.pid == pid && after.restarts == before.restarts, "never killed while it answered")
                // The same slow /health with nothing flowing is an instance that does not answer.
                try await eventually(timeout: .seconds(20), "declared dead and restarted once nothing flows") {
                    let now = try await control.status().instances[0]
                    return now.pid != pid && now.state == .ready
                }
                #expect(try await control.status().instances[0].lastError?.contains("health checks") == true)
            }
        }
    }

    @Test func anUnhealthyInstanceComesBackWhenItsChecksPassAgain() async throws {
        let config = fakeFleetConfig(directory: directory) { $0.healthCheck.restartAfter = 1000 }
        try await withController(config) { url, control in
            let before = try await control.status().instances[0]
            let base = "http://127.0.0.1:\(try #require(before.port))"
            try await UpstreamClient.with { client in
                _ = try await client.fetch(UpstreamRequest(method: "POST", url: base + "/fake/unhealthy"))
                try await eventually("unhealthy") { try await control.status().instances[0].state == .unhealthy }
                _ = try await client.fetch(UpstreamRequest(method: "POST", url: base + "/fake/healthy"))
                try await eventually("ready again") { try await control.status().instances[0].state == .ready }
                #expect(try await control.status().instances[0].pid == before.pid, "the same process, never restarted")
                #expect(try await post(url + "/v1/completions", #"{"model":"fake"}"#, client: client).status == 200)
            }
        }
    }

    @Test func embeddingsAreRoutedLikeCompletions() async throws {
        let config = fakeFleetConfig(directory: directory, args: ["--embeddings"])
        try await withController(config) { url, control in
            let port = try #require(try await control.status().instances[0].port)
            try await UpstreamClient.with { client in
                let answer = try await post(url + "/v1/embeddings", #"{"model":"fake","input":["a","b"]}"#, client: client)
                #expect(answer.status == 200 && answer.bodyText.contains(#""embedding":[0.1,0.2,0.3]"#))
                #expect(answer.bodyText.contains(#""model":"fake""#))
                let stats = try await fakeStats("http://127.0.0.1:\(port)", client: client)
                #expect(stats["embeddings"] as? Int == 1 && (stats["lastRequest"] as? String)?.contains(#""input":["a","b"]"#) == true)
            }
        }
    }
}
