import FleetTestSupport
import Foundation
import Synchronization
import Testing
@testable import FleetClient
@testable import FleetConfig
@testable import FleetCore

/// `fleet bench`: workloads that repeat exactly from a seed, the report's figures and shape, and a run against a
/// controller over fake servers.
@Suite("fleet bench", .timeLimit(.minutes(2)))
struct BenchTests {
    let agent = BenchWorkload(kind: .agent, sessions: 70, turns: 3, seed: 42, contextTokens: 300)

    @Test func theSameSeedGivesTheSameWorkloadAndAnotherSeedAnother() {
        let again = BenchWorkload(kind: .agent, sessions: 70, turns: 3, seed: 42, contextTokens: 300)
        let other = BenchWorkload(kind: .agent, sessions: 70, turns: 3, seed: 43, contextTokens: 300)
        #expect(agent.systemPrompt(session: 3) == again.systemPrompt(session: 3))
        #expect(agent.userMessage(session: 3, turn: 2) == again.userMessage(session: 3, turn: 2))
        #expect(agent.thinkTime(session: 3, turn: 2) == again.thinkTime(session: 3, turn: 2))
        #expect(agent.chatPrompt(index: 9) == again.chatPrompt(index: 9))
        #expect(agent.systemPrompt(session: 3) != other.systemPrompt(session: 3))
        #expect(agent.chatPrompt(index: 9) != other.chatPrompt(index: 9))
    }

    @Test func sessionsDifferFromTheirFirstCharacterAndHaveTheAskedLength() {
        let prompts = (0..<62).map { agent.systemPrompt(session: $0) }
        #expect(Set(prompts.map(\.first)).count == 62, "the first 62 sessions start with 62 different characters")
        let all = (0..<agent.sessions).map { agent.systemPrompt(session: $0) }
        #expect(Set(all.map { $0.prefix(3) }).count == all.count, "every session differs within its first characters")
        #expect(all.allSatisfy { (1100...1400).contains($0.count) }, "about 300 tokens of 4 characters")
        let chats = (0..<62).map { agent.chatPrompt(index: $0) }
        #expect(Set(chats.map(\.first)).count == 62)
        #expect(Set((0..<62).map { agent.embeddingInput(index: $0).first }).count == 62)
    }

    @Test func anAgentSessionsHistoryGrowsTurnByTurn() {
        let first = agent.messages(session: 5, turn: 1, answers: [])
        let second = agent.messages(session: 5, turn: 2, answers: ["answer one"])
        let third = agent.messages(session: 5, turn: 3, answers: ["answer one", "answer two"])
        #expect(first.map(\.role) == ["system", "user"])
        #expect(second.map(\.role) == ["system", "user", "assistant", "user"])
        #expect(third.count == 6)
        #expect(Array(third.prefix(4)) == second, "each turn resends the last one whole: a prefix to cache")
        #expect(second[2].content == "answer one" && third[4].content == "answer two")
        let toolOutput = third[5].content.count
        #expect((400...900).contains(toolOutput), "100–200 tokens of tool output: \(toolOutput) characters")
    }

    @Test(arguments: [(50.0, 5.0), (90.0, 9.0), (99.0, 10.0), (10.0, 1.0), (100.0, 10.0)])
    func percentilesByNearestRank(p: Double, expected: Double) {
        let values = (1...10).map(Double.init)
        #expect(BenchReport.percentile(values, p) == expected)
    }

    @Test func theReportSumsTheSamplesAndItsJSONHasEveryKey() throws {
        let plan = BenchPlan(model: "fake", workload: BenchWorkload(kind: .agent, sessions: 2, turns: 2, seed: 1), concurrency: 2)
        let samples = [
            BenchSample(session: 0, turn: 1, status: 200, timeToFirstToken: 0.1, latency: 0.2, completionTokens: 4,
                        cachedTokens: 0, processedTokens: 100, instance: "fake/0"),
            BenchSample(session: 0, turn: 2, status: 200, timeToFirstToken: 0.02, latency: 0.1, completionTokens: 4,
                        cachedTokens: 90, processedTokens: 10, instance: "fake/0"),
            BenchSample(session: 1, turn: 1, status: 503, error: "HTTP 503: busy", latency: 0.01, instance: "fake/1"),
        ]
        let report = BenchReport(plan: plan, policy: "prefixAware", samples: samples, wall: .seconds(2))
        #expect(report.requests == 3 && report.errors == 1)
        #expect(report.completionTokens == 8 && report.completionTokensPerSecond == 4)
        #expect(report.cacheHitRatio == 90.0 / 200.0)
        #expect(report.instances == ["fake/0": 2, "fake/1": 1])
        #expect(report.ttftLaterTurnsMs?.count == 1 && abs((report.ttftLaterTurnsMs?.p50 ?? 0) - 20) < 1e-9)
        #expect(report.firstErrors == ["HTTP 503: busy"])
        #expect(report.sessionMoves == 0)
        let moved = BenchReport(plan: plan, policy: nil, samples: samples.map { sample in
            var sample = sample
            if sample.turn == 2 { sample.instance = "fake/1" }
            return sample
        }, wall: .seconds(2))
        #expect(moved.sessionMoves == 1, "session 0's second turn went elsewhere")

        let json = try #require(try JSONSerialization.jsonObject(with: Data(BenchReport.json([report]).utf8)) as? [String: Any])
        let keys: Set<String> = ["workload", "model", "policy", "seed", "sessions", "turns", "concurrency", "interrupted",
                                 "requests", "errors", "wallSeconds", "ttftMs", "ttftLaterTurnsMs", "latencyMs",
                                 "completionTokens", "completionTokensPerSecond", "cachedPromptTokens",
                                 "processedPromptTokens", "cacheHitRatio", "instances", "sessionMoves", "firstErrors"]
        #expect(Set(json.keys) == keys)
        #expect((json["ttftMs"] as? [String: Any]).map { Set($0.keys) } == ["p50", "p90", "p99", "count"])

        let chat = BenchReport(plan: BenchPlan(model: "fake", workload: BenchWorkload(kind: .chat, sessions: 1, turns: 1, seed: 1),
                                               concurrency: 1), policy: nil, samples: [], wall: .seconds(1))
        let empty = try #require(try JSONSerialization.jsonObject(with: Data(BenchReport.json([chat]).utf8)) as? [String: Any])
        #expect(Set(empty.keys) == keys, "absent figures are null, not missing")
        #expect(empty["cacheHitRatio"] is NSNull && empty["policy"] is NSNull && empty["sessionMoves"] is NSNull)

        let both = try #require(try JSONSerialization.jsonObject(with: Data(BenchReport.json([report, report]).utf8)) as? [String: Any])
        #expect((both["reports"] as? [[String: Any]])?.count == 2)
        let table = BenchReport.comparisonTable([report, chat])
        #expect(table.contains("prefixAware") && table.contains("TTFT p50/p90/p99"))
    }

    @Test func answersAreReadFromTimingsElseUsage() {
        var streamed = BenchAnswerReader()
        let content = streamed.read(event: #"data: {"choices":[{"delta":{"content":"Hi"}}]}"#)
        let last = streamed.read(event: #"data: {"choices":[{"delta":{}}],"timings":{"cache_n":30,"prompt_n":5,"predicted_n":7}}"#)
        #expect(content && !last, "only an event with text counts as the first token")
        streamed.read(event: "data: [DONE]")
        #expect(streamed.text == "Hi" && streamed.done && streamed.error == nil)
        #expect(streamed.cachedTokens == 30 && streamed.processedTokens == 5 && streamed.completionTokens == 7)

        var usage = BenchAnswerReader()
        usage.read(event: #"data: {"choices":[],"usage":{"prompt_tokens":35,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":30}}}"#)
        #expect(usage.cachedTokens == 30 && usage.processedTokens == 5 && usage.completionTokens == 5)

        var cut = BenchAnswerReader()
        cut.read(event: #"data: {"error":{"message":"upstream_cut: the instance went away"}}"#)
        #expect(cut.error == "upstream_cut: the instance went away" && !cut.done)
    }

    @Test func anAgentRunThroughTheGatewayMeasuresEveryRequest() async throws {
        let directory = temporaryDirectory()
        let config = fakeFleetConfig(directory: directory, args: ["--fake-tokens", "4", "--fake-token-delay", "0.005"], replicas: 2)
        try await withController(config) { url, control in
            let workload = BenchWorkload(kind: .agent, sessions: 2, turns: 2, seed: 7, contextTokens: 200, maxTokens: 4,
                                         thinkTime: .milliseconds(50))
            let runner = BenchRunner(baseURL: url, plan: BenchPlan(model: "fake", workload: workload, concurrency: 2))
            try await runner.checkModel()
            let seen = ProgressCount()
            let report = try await runner.run { seen.record($0) }
            #expect(report.requests == 4 && report.errors == 0, "\(report.firstErrors)")
            #expect(seen.last?.done == 4 && seen.last?.total == 4)
            #expect(report.ttftMs?.count == 4 && report.ttftLaterTurnsMs?.count == 2 && report.latencyMs?.count == 4)
            #expect(report.completionTokens == 16)
            #expect(report.processedPromptTokens > 0 && report.cacheHitRatio != nil)
            #expect(report.instances.values.reduce(0, +) == 4)
            #expect(!report.interrupted && report.wallSeconds > 0)

            let wrong = BenchRunner(baseURL: url, plan: BenchPlan(model: "nope", workload: workload, concurrency: 1))
            await #expect(throws: BenchError.unknownModel(model: "nope", url: url, available: ["fake"])) {
                try await wrong.checkModel()
            }
            _ = control
        }
    }

    @Test func noGatewayAtTheURLSaysSo() async throws {
        let port = TestPorts.block(1).lowerBound
        let runner = BenchRunner(baseURL: "http://127.0.0.1:\(port)",
                                 plan: BenchPlan(model: "fake", workload: agent, concurrency: 1))
        await #expect(throws: ControlClient.Unreachable.self) { try await runner.checkModel() }
    }
}

/// The progress reports a run made, the last one kept.
final class ProgressCount: Sendable {
    private let state = Mutex<BenchProgress?>(nil)
    func record(_ progress: BenchProgress) { state.withLock { current in
        if (current?.done ?? 0) < progress.done { current = progress }
    } }
    var last: BenchProgress? { state.withLock { $0 } }
}
