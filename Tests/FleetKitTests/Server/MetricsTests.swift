import FleetTestSupport
import Foundation
import NIOCore
import Testing
@testable import FleetUpstream
@testable import FleetServer
@testable import FleetRouting
@testable import FleetCore
@testable import FleetClient

/// One sample of the Prometheus text format.
struct PrometheusSample: Equatable {
    var name: String
    var labels: [String: String]
    var value: Double
}

/// A strict reader of the Prometheus text exposition format (version 0.0.4): every line must be a `# HELP`,
/// a `# TYPE` with a known type, or a sample `name{label="value",...} number`; anything else is an error.
func parsePrometheus(_ text: String) throws -> [PrometheusSample] {
    struct Malformed: Error, CustomStringConvertible { let line: String; var description: String { "malformed line: \(line)" } }
    let name = #"[a-zA-Z_:][a-zA-Z0-9_:]*"#
    let help = try Regex("^# HELP \(name) .*$")
    let type = try Regex("^# TYPE \(name) (counter|gauge|histogram|summary|untyped)$")
    let sample = try Regex(#"^(\#(name))(\{(.*)\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$"#)
    let label = try Regex(#"([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)""#)
    var samples: [PrometheusSample] = []
    for line in text.split(separator: "\n") {
        if line.wholeMatch(of: help) != nil || line.wholeMatch(of: type) != nil { continue }
        guard let match = line.wholeMatch(of: sample), let metric = match.output[1].substring,
              let raw = match.output[4].substring else { throw Malformed(line: String(line)) }
        var labels: [String: String] = [:]
        if let body = match.output[3].substring {
            for pair in body.matches(of: label) {
                labels[String(pair.output[1].substring!)] = String(pair.output[2].substring!)
            }
        }
        let value = raw == "+Inf" ? Double.infinity : raw == "-Inf" ? -Double.infinity : Double(raw) ?? .nan
        samples.append(PrometheusSample(name: String(metric), labels: labels, value: value))
    }
    return samples
}

extension [PrometheusSample] {
    /// The sum of the samples named `name` whose labels include `labels`.
    func sum(_ name: String, _ labels: [String: String] = [:]) -> Double {
        filter { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }
            .reduce(0) { $0 + $1.value }
    }
}

@Suite("GET /metrics", .timeLimit(.minutes(2)))
struct MetricsTests {
    let directory = temporaryDirectory()

    func scrape(_ url: String) async throws -> [PrometheusSample] {
        let response = try await UpstreamClient.with { try await $0.fetch(UpstreamRequest(url: url + "/metrics")) }
        #expect(response.status == 200)
        #expect(response.header("content-type")?.hasPrefix("text/plain; version=0.0.4") == true)
        return try parsePrometheus(response.bodyText)
    }

    @Test func metricsParseAsPrometheusTextAndMoveWithTraffic() async throws {
        let config = fakeFleetConfig(directory: directory, args: ["--fake-tokens", "3"], replicas: 2)
        try await withController(config) { url, control in
            let before = try await scrape(url)
            #expect(before.sum("fleet_requests_total") == 0)
            #expect(before.sum("fleet_instance_state", ["instance": "fake/0", "state": "ready"]) == 1)
            #expect(before.sum("fleet_instance_state", ["instance": "fake/1", "state": "starting"]) == 0)
            #expect(before.sum("fleet_instance_slots", ["instance": "fake/0"]) >= 1)
            #expect(before.sum("process_resident_memory_bytes") > 0)
            #expect(before.sum("process_open_fds") > 0)

            try await UpstreamClient.with { client in
                for stream in [false, true, false, true] {
                    let response = try await post(url + "/v1/completions", #"{"model":"fake","stream":\#(stream)}"#, client: client)
                    #expect(response.status == 200)
                }
                // Refused before any instance: counted under no instance.
                let missing = try await post(url + "/v1/completions", #"{"model":"fake","stream":false,"#, client: client)
                #expect(missing.status == 400)
            }
            let after = try await scrape(url)
            #expect(after.sum("fleet_requests_total", ["model": "fake", "status": "200"]) == 4)
            #expect(after.sum("fleet_requests_total", ["instance": "fake/0"]) == 2, "round-robin: two each")
            #expect(after.sum("fleet_request_duration_seconds_count", ["model": "fake"]) == 4)
            #expect(after.sum("fleet_time_to_first_token_seconds_count", ["model": "fake"]) == 4)
            #expect(after.sum("fleet_tokens_generated_total", ["model": "fake"]) == 12,
                    "3 tokens each, from usage (non-streamed) and timings (streamed)")
            #expect(after.sum("fleet_requests_in_flight") == 0)
            let traffic = try await control.status().instances.compactMap(\.traffic)
            #expect(traffic.map(\.tokens).reduce(0, +) == 12, "status counts the same tokens")
            #expect(traffic.allSatisfy { ($0.lastTokensPerSecond ?? 0) > 0 })
            #expect(after.sum("fleet_queue_depth", ["model": "fake"]) == 0)

            // A crash restart is counted for its replica.
            let pid = try #require(try await control.status().instances.first { $0.id == "fake/0" }?.pid)
            kill(pid, SIGKILL)
            try await eventually("restart counted") {
                try await scrape(url).sum("fleet_instance_restarts_total", ["instance": "fake/0"]) == 1
            }
        }
    }

    @Test func tokenCountsComeFromTheTailOfTheAnswer() {
        let usage = ByteBuffer(string: #"{"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":17,"total_tokens":21}}"#)
        #expect(AnswerFigures.scan([usage]).completionTokens == 17)
        // Split across the two chunks kept, as a stream's last event may be.
        let first = ByteBuffer(string: #"data: {"choices":[{"delta":{}}],"timings":{"prompt_n":4,"predic"#)
        let second = ByteBuffer(string: #"ted_n": 42,"predicted_ms":1}}"# + "\n\ndata: [DONE]\n\n")
        #expect(AnswerFigures.scan([first, second]).completionTokens == 42)
        // Or its number: the whole number counts, not the digits before the seam.
        let cut = [ByteBuffer(string: #"data: {"timings":{"cache_n":2,"prompt_n":40,"prompt_ms":8"#),
                   ByteBuffer(string: #"0.5,"predicted_n":4"#)]
        let rest = ByteBuffer(string: #"2}}"# + "\n\ndata: [DONE]\n\n")
        #expect(AnswerFigures.scan(cut).promptMsPerToken == 80.5 / 40)
        #expect(AnswerFigures.scan([cut[1], rest]).completionTokens == 42)
        // A later key after the seam is the one that counts.
        #expect(AnswerFigures.scan([usage, ByteBuffer(string: #"{"usage":{"completion_tokens":18}}"#)]).completionTokens == 18)
        #expect(AnswerFigures.scan([ByteBuffer(string: #"{"error":"boom"}"#)]) == AnswerFigures())
        // A key with no number after it does not hide the last one that has one; a key cut at the end is no key.
        let nulls = ByteBuffer(string: #"{"usage":{"completion_tokens":6}}{"usage":{"completion_tokens":null}}{"completion_tok"#)
        #expect(AnswerFigures.scan([nulls]).completionTokens == 6)
        // A longer key that ends like one looked for is not it.
        let suffixed = ByteBuffer(string: #"{"completion_tokens":5,"not_completion_tokens":9,"xpredicted_n":7}"#)
        #expect(AnswerFigures.scan([suffixed]).completionTokens == 5)
    }

    @Test func aTailOfManyEventsIsReadOnlyAtItsEnd() {
        // A stream's writes carry what came meanwhile: its last chunk may hold hundreds of events.
        let event = #"data: {"choices":[{"delta":{"content":"x"}}],"usage":{"completion_tokens":1}}"# + "\n\n"
        let many = ByteBuffer(string: String(repeating: event, count: 200))
        let last = ByteBuffer(string: #"data: {"choices":[],"timings":{"cache_n":3,"prompt_n":4,"predicted_n":201}}"# + "\n\ndata: [DONE]\n\n")
        #expect(AnswerFigures.scan([many, last]).completionTokens == 201)
        #expect(AnswerFigures.scan([many, last]).promptCache == PromptCacheCounts(promptTokens: 7, cachedTokens: 3))
        // What lies further back than the bytes looked at is not read.
        let early = ByteBuffer(string: #"{"usage":{"completion_tokens":9}}"# + String(repeating: " ", count: AnswerFigures.scanned))
        #expect(AnswerFigures.scan([early]).completionTokens == nil)
        #expect(AnswerFigures.scan([early, ByteBuffer(string: #"{"usage":{"completion_tokens":8}}"#)]).completionTokens == 8)
    }

    @Test func promptCacheFiguresComeFromTimingsOrUsage() {
        // llama-server 11434's own answers, streamed (last event) and not.
        let streamed = ByteBuffer(string: #"data: {"choices":[{"finish_reason":"length","index":0,"delta":{}}],"timings":{"cache_n":30,"prompt_n":5,"prompt_ms":41.09,"predicted_n":5,"predicted_ms":67.5}}"# + "\n\ndata: [DONE]\n\n")
        #expect(AnswerFigures.scan([streamed]) == AnswerFigures(completionTokens: 5, promptCache: PromptCacheCounts(promptTokens: 35, cachedTokens: 30)),
                "5 evaluated tokens are too few to time")
        let timed = ByteBuffer(string: #"{"timings":{"cache_n":0,"prompt_n":438,"prompt_ms":1401.6,"predicted_n":8}}"#)
        #expect(AnswerFigures.scan([timed]).promptMsPerToken == 1401.6 / 438)
        let whole = ByteBuffer(string: #"{"usage":{"completion_tokens":3,"prompt_tokens":12,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":7}},"timings":{"cache_n":7,"prompt_n":5,"predicted_n":3}}"#)
        #expect(AnswerFigures.scan([whole]).promptCache == PromptCacheCounts(promptTokens: 12, cachedTokens: 7))
        // Another server's usage only (an endpoint that is not llama-server).
        let usageOnly = ByteBuffer(string: #"{"usage":{"completion_tokens":3,"prompt_tokens":12,"prompt_tokens_details":{"cached_tokens":8}}}"#)
        #expect(AnswerFigures.scan([usageOnly]).promptCache == PromptCacheCounts(promptTokens: 12, cachedTokens: 8))
        // Embeddings report prompt tokens but nothing of a cache: not counted (it would dilute the ratio).
        let embeddings = ByteBuffer(string: #"{"data":[],"usage":{"prompt_tokens":2,"total_tokens":2}}"#)
        #expect(AnswerFigures.scan([embeddings]).promptCache == nil)
    }

    @Test func replicaLabelsDropTheGeneration() {
        #expect(PoolMemberKind.instance(InstanceID(model: "gemma", replica: 0, generation: 3)).label == "gemma/0")
        #expect(PoolMemberKind.endpoint(url: "http://10.0.0.5:8080").label == "http://10.0.0.5:8080")
    }
}
