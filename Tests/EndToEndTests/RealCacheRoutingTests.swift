import FleetClient
import FleetCore
import FleetTestSupport
import FleetUpstream
import Foundation
import Testing

/// Cache-aware routing on the real llama-server: llama-server's own `cache_n` says each session's later turns
/// found their prefix on the replica they were sent to; `fleet bench` runs against the real fleet. Part of the
/// real-model suite, which runs one test at a time: two real fleets at once would starve the timing-sensitive
/// tests that run beside them on a 2-core machine.
extension RealFleetTests {

    /// One turn through the gateway: the instance that served it and llama-server's `timings`.
    func turn(_ messages: [[String: String]], stream: Bool, client: UpstreamClient) async throws
        -> (instance: String, answer: String, cacheN: Int, promptN: Int) {
        let object: [String: Any] = ["model": "gemma", "messages": messages, "max_tokens": 8, "temperature": 0, "stream": stream]
        let body = try JSONSerialization.data(withJSONObject: object)
        let response = try await client.fetch(UpstreamRequest(method: "POST", url: "http://127.0.0.1:\(listenPort)/v1/chat/completions",
                                                              headers: [("Content-Type", "application/json")], body: Array(body),
                                                              totalTimeout: .seconds(120)))
        #expect(response.status == 200, "\(response.bodyText)")
        let instance = try #require(response.header("X-Fleet-Instance"))
        // Non-streamed: one JSON; streamed: the text of every delta, and `timings` in the last event.
        var answer = ""
        var timings: [String: Any] = [:]
        let documents = stream
            ? response.bodyText.split(separator: "\n").filter { $0.hasPrefix("data: {") }.map { String($0.dropFirst(6)) }
            : [response.bodyText]
        for document in documents {
            let json = try #require(try JSONSerialization.jsonObject(with: Data(document.utf8)) as? [String: Any])
            let choice = (json["choices"] as? [[String: Any]])?.first
            answer += ((choice?[stream ? "delta" : "message"] as? [String: Any])?["content"] as? String) ?? ""
            if let found = json["timings"] as? [String: Any] { timings = found }
        }
        return (instance, answer, try #require(timings["cache_n"] as? Int), try #require(timings["prompt_n"] as? Int))
    }

    @Test func laterTurnsOfEverySessionFindTheirPrefixInLlamaServersCache() async throws {
        let (server, model) = try realServerAndModel()
        let config = try writeFleet("cache-routing.json", server: server, models: """
            "gemma": { "path": "\(model)", "replicas": 2, "contextSize": 4096, "gpuLayers": 0, "threads": 1,
                       "parallel": 2, "policy": "prefixAware" }
            """)
        let up = try await runCommand(Products.fleet, ["up", "--detach", "--config", config])
        #expect(up.code == 0, "\(up.output)")
        defer { _ = try? runCommandBlocking(Products.fleet, ["down", "--config", config]) }

        try await UpstreamClient.with { client in
            var sessions = (0..<4).map { index in
                [["role": "system", "content": "Session \(index): you review the module \(["router", "pool", "cache", "queue"][index]). "
                    + String(repeating: "Every answer is short and names one file of the repository. ", count: 12)]]
            }
            var homes: [Int: String] = [:]
            for round in 0..<3 {
                for index in sessions.indices {
                    sessions[index].append(["role": "user", "content": "Round \(round): which file next?"])
                    let result = try await turn(sessions[index], stream: index % 2 == 1, client: client)
                    sessions[index].append(["role": "assistant", "content": result.answer])
                    if round == 0 {
                        homes[index] = result.instance
                    } else {
                        #expect(result.instance == homes[index], "session \(index) round \(round) moved")
                        #expect(result.cacheN > 100, "session \(index) round \(round): llama-server reused \(result.cacheN) tokens, evaluated \(result.promptN)")
                    }
                }
            }
            #expect(Set(homes.values).count == 2, "sessions spread over both replicas: \(homes)")
        }
        let status = try await ControlClient(baseURL: "http://127.0.0.1:\(listenPort)").status()
        let ratio = try #require(status.models.first?.promptCache?.hitRatio)
        #expect(ratio > 0.5, "\(String(describing: status.models.first?.promptCache))")
        let metrics = try await UpstreamClient.with {
            try await $0.fetch(UpstreamRequest(url: "http://127.0.0.1:\(listenPort)/metrics"))
        }.bodyText
        #expect(metrics.contains("fleet_prompt_cache_hit_ratio{model=\"gemma\"}"), "\(metrics)")

        // fleet bench on the real fleet: a short agent run, whose report's shape (not its timings) is checked.
        let bench = try await runCommand(Products.fleet, ["bench", "--config", config, "-m", "gemma", "--workload", "agent",
                                                          "--sessions", "2", "--turns", "2", "--think-time", "0",
                                                          "--context-tokens", "200", "--max-tokens", "4", "--json"])
        #expect(bench.code == 0, "\(bench.output)")
        let start = try #require(bench.output.firstIndex(of: "{"))
        let report = try #require(try JSONSerialization.jsonObject(with: Data(bench.output[start...].utf8)) as? [String: Any],
                                  "\(bench.output)")
        #expect(report["requests"] as? Int == 4 && report["errors"] as? Int == 0, "\(report)")
        #expect((report["instances"] as? [String: Int])?.keys.allSatisfy { $0.hasPrefix("gemma/") } == true, "\(report)")
        #expect(report["cacheHitRatio"] as? Double != nil && report["ttftLaterTurnsMs"] as? [String: Any] != nil, "\(report)")
    }
}
