import FleetTestSupport
import Foundation
import NIOCore
import Testing
@testable import FleetUpstream
@testable import FleetCore
@testable import FleetConfig
@testable import FleetClient

/// Tool calls and the provider's own client, through the gateway, over fake servers.
@Suite("the provider's client and tool calls through the gateway", .timeLimit(.minutes(2)))
struct ProviderGatewayTests {
    let directory = temporaryDirectory()
    let tools = #"[{"type":"function","function":{"name":"get_weather","description":"the weather in a city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]"#

    @Test(arguments: ["fake", "fake-alias"])
    func toolCallsPassIntactBothWays(model: String) async throws {
        let config = fakeFleetConfig(directory: directory) { $0.models[0].aliases = ["fake-alias"] }
        try await withController(config) { url, control in
            let port = try #require(try await control.status().instances[0].port)
            try await UpstreamClient.with { client in
                let request = #"{"model":"\#(model)","messages":[{"role":"user","content":"Weather in Paris?"}],"tools":\#(tools),"tool_choice":"auto"}"#
                let whole = try await post(url + "/v1/chat/completions", request, client: client)
                #expect(whole.status == 200)
                let json = try #require(try JSONSerialization.jsonObject(with: Data(whole.bodyText.utf8)) as? [String: Any])
                let message = try #require(((json["choices"] as? [[String: Any]])?.first?["message"]) as? [String: Any])
                let call = try #require((message["tool_calls"] as? [[String: Any]])?.first?["function"] as? [String: Any])
                #expect(call["name"] as? String == "get_weather" && call["arguments"] as? String == #"{"city":"Paris"}"#)
                #expect(json["model"] as? String == model)

                let sent = try await fakeStats("http://127.0.0.1:\(port)", client: client)["lastRequest"] as? String ?? ""
                let forwarded = try #require(try JSONSerialization.jsonObject(with: Data(sent.utf8)) as? [String: Any])
                #expect(forwarded["tool_choice"] as? String == "auto")
                #expect((forwarded["tools"] as? [[String: Any]]).map { try? JSONSerialization.data(withJSONObject: $0, options: .sortedKeys) }
                        == (try JSONSerialization.jsonObject(with: Data(tools.utf8)) as? [[String: Any]]).map { try? JSONSerialization.data(withJSONObject: $0, options: .sortedKeys) },
                        "the tools reach llama-server as sent")

                let streamed = try await post(url + "/v1/chat/completions", request.replacingOccurrences(of: #""tool_choice""#, with: #""stream":true,"tool_choice""#), client: client)
                var arguments = ""
                var names: [String] = []
                for line in streamed.bodyText.split(separator: "\n") where line.hasPrefix("data: {") {
                    let event = try #require(try JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8)) as? [String: Any])
                    #expect(event["model"] as? String == model)
                    let delta = ((event["choices"] as? [[String: Any]])?.first?["delta"]) as? [String: Any]
                    for call in delta?["tool_calls"] as? [[String: Any]] ?? [] {
                        let function = call["function"] as? [String: Any]
                        if let name = function?["name"] as? String { names.append(name) }
                        arguments += function?["arguments"] as? String ?? ""
                    }
                }
                #expect(names == ["get_weather"] && arguments == #"{"city":"Paris"}"#, "the deltas add up to the call")
                #expect(streamed.bodyText.contains(#""finish_reason":"tool_calls""#) && streamed.bodyText.hasSuffix("data: [DONE]\n\n"))
            }
        }
    }

    /// The provider's client spoke /health, /v1/models and streamed /v1/chat/completions to its server; pointed at
    /// fleet (LLAMACPP_API_URL=http://127.0.0.1:8090), the same calls work unchanged.
    @Test func theProvidersClientWorksUnchanged() async throws {
        try await withController(fakeFleetConfig(directory: directory)) { url, _ in
            try await UpstreamClient.with { client in
                let health = try await client.fetch(UpstreamRequest(url: url + "/health"))
                #expect(health.status == 200 && health.bodyText.contains(#""status""#) && health.bodyText.contains(#""ok""#))
                let models = try await client.fetch(UpstreamRequest(url: url + "/v1/models"))
                #expect(models.status == 200 && models.bodyText.contains(#""id":"fake""#))
                let chat = try await post(url + "/v1/chat/completions",
                                          #"{"model":"fake","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#, client: client)
                #expect(chat.status == 200 && chat.header("content-type") == "text/event-stream")
                #expect(chat.bodyText.contains(#""delta":{"content":"tok0 "}"#) && chat.bodyText.hasSuffix("data: [DONE]\n\n"))
            }
        }
    }
}
