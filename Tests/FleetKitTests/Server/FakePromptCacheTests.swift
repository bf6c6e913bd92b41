import FleetTestSupport
import Foundation
import Testing
@testable import FleetUpstream

/// The fake llama-server reports prompt-cache figures as the real one does (`timings.cache_n` / `prompt_n`,
/// `usage.prompt_tokens_details.cached_tokens`), from its own record of the prompts it processed: what
/// cache-aware routing and `fleet bench` are tested against.
@Suite("fake server prompt cache", .timeLimit(.minutes(2)))
struct FakePromptCacheTests {
    /// The `timings` object of a streamed answer's last data event.
    func streamedTimings(_ text: String) throws -> [String: Any] {
        let events = text.components(separatedBy: "\n\n").filter { $0.hasPrefix("data: {") }
        let last = try #require(events.last)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(last.dropFirst(6).utf8)) as? [String: Any])
        return try #require(json["timings"] as? [String: Any])
    }

    func chat(_ messages: [[String: String]], stream: Bool) throws -> String {
        let body: [String: Any] = ["model": "fake", "stream": stream, "messages": messages, "max_tokens": 4]
        return String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self)
    }

    @Test func aConversationsSecondTurnIsServedMostlyFromTheCache() async throws {
        let (process, url) = try await startFakeEndpoint(["--fake-tokens", "4", "--fake-token-delay", "0"])
        defer { process.terminate() }
        try await UpstreamClient.with { client in
            let system = ["role": "system", "content": String(repeating: "You are a careful agent. ", count: 20)]
            var messages = [system, ["role": "user", "content": "List the files."]]
            let first = try await post(url + "/v1/chat/completions", chat(messages, stream: true), client: client)
            #expect(first.status == 200)
            let firstTimings = try streamedTimings(first.bodyText)
            let firstPromptN = try #require(firstTimings["prompt_n"] as? Int)
            #expect(firstTimings["cache_n"] as? Int == 0, "nothing was cached yet")
            #expect(firstTimings["predicted_n"] as? Int == 4)

            // The next turn resends the history: the answer as streamed, then a new user message.
            messages.append(["role": "assistant", "content": "tok0 tok1 tok2 tok3 "])
            messages.append(["role": "user", "content": "Now read README.md."])
            let second = try await post(url + "/v1/chat/completions", chat(messages, stream: true), client: client)
            let secondTimings = try streamedTimings(second.bodyText)
            let cacheN = try #require(secondTimings["cache_n"] as? Int)
            let promptN = try #require(secondTimings["prompt_n"] as? Int)
            #expect(cacheN > firstPromptN - 2, "the whole first turn is reused: \(cacheN) of \(firstPromptN)")
            #expect(promptN < firstPromptN / 4, "only the new turn is processed: \(promptN)")

            // Non-streamed answers carry the same figures in usage and timings.
            let third = try await post(url + "/v1/chat/completions", chat(messages, stream: false), client: client)
            let json = try #require(try JSONSerialization.jsonObject(with: Data(third.bodyText.utf8)) as? [String: Any])
            let usage = try #require(json["usage"] as? [String: Any])
            let details = try #require(usage["prompt_tokens_details"] as? [String: Any])
            let timings = try #require(json["timings"] as? [String: Any])
            #expect(usage["completion_tokens"] as? Int == 4)
            #expect((details["cached_tokens"] as? Int ?? 0) >= cacheN)
            #expect(details["cached_tokens"] as? Int == timings["cache_n"] as? Int)
            #expect(usage["prompt_tokens"] as? Int == (timings["cache_n"] as? Int ?? 0) + (timings["prompt_n"] as? Int ?? 0))

            let cache = try await client.fetch(UpstreamRequest(url: url + "/fake/cache"))
            let figures = try #require(try JSONSerialization.jsonObject(with: Data(cache.bodyText.utf8)) as? [String: Any])
            #expect(figures["prompts"] as? Int == 3)
            #expect(figures["lastCacheN"] as? Int == timings["cache_n"] as? Int)
        }
    }

    @Test func anUnrelatedPromptFindsNothingCachedAndCompletionsCountToo() async throws {
        let (process, url) = try await startFakeEndpoint(["--fake-tokens", "2", "--fake-token-delay", "0"])
        defer { process.terminate() }
        try await UpstreamClient.with { client in
            let prompt = String(repeating: "abcd", count: 50)  // 200 bytes: 50 tokens
            let first = try await post(url + "/v1/completions", #"{"model":"fake","prompt":"\#(prompt)"}"#, client: client)
            let json = try #require(try JSONSerialization.jsonObject(with: Data(first.bodyText.utf8)) as? [String: Any])
            #expect((json["timings"] as? [String: Any])?["prompt_n"] as? Int == 50)
            let again = try await post(url + "/v1/completions", #"{"model":"fake","prompt":"\#(prompt)xyz"}"#, client: client)
            let timings = try #require((try JSONSerialization.jsonObject(with: Data(again.bodyText.utf8)) as? [String: Any])?["timings"] as? [String: Any])
            #expect(timings["cache_n"] as? Int == 50)
            #expect(timings["prompt_n"] as? Int == 1)
            let other = try await post(url + "/v1/completions", #"{"model":"fake","prompt":"zzzz"}"#, client: client)
            let otherTimings = try #require((try JSONSerialization.jsonObject(with: Data(other.bodyText.utf8)) as? [String: Any])?["timings"] as? [String: Any])
            #expect(otherTimings["cache_n"] as? Int == 0)
        }
    }
}
