import FleetTestSupport
import Foundation
import Testing
@testable import FleetConfig
@testable import FleetCore
@testable import FleetUpstream
@testable import FleetClient

/// A front fleet that runs nothing itself offers a back fleet's models (`peers`), with the back fleet's key.
@Suite("fleets of fleets over fake servers", .timeLimit(.minutes(2)))
struct FleetsOfFleetsTests {
    static let backKey = "back-fleet-key-1234"
    static let frontKey = "front-fleet-key-5678"

    @Test func aFrontFleetServesABackFleetsModelsWithTheBackKeyNeverTheClients() async throws {
        let back = fakeFleetConfig(directory: temporaryDirectory("back"), args: ["--fake-tokens", "5"]) {
            $0.models[0].aliases = ["fake-alias"]
            $0.keys = KeySet(user: [Self.backKey], admin: [])
        }
        try await withController(back) { backURL, _ in
            var front = fakeFleetConfig(directory: temporaryDirectory("front"))
            front.models = []
            front.peers = [Peer(url: backURL, apiKey: Self.backKey, refresh: .seconds(1))]
            front.keys = KeySet(user: [Self.frontKey], admin: [])
            try await withController(front, waitForReady: 1) { frontURL, control in
                try await eventually("the back fleet's model is offered and ready") {
                    let status = try await control.status()
                    return status.models.map(\.name) == ["fake"]
                        && status.instances.contains { $0.id == backURL && $0.state == .ready }
                }
                try await UpstreamClient.with { client in
                    let models = try await client.fetch(UpstreamRequest(url: frontURL + "/v1/models",
                                                                        headers: [("Authorization", "Bearer \(Self.frontKey)")]))
                    #expect(models.bodyText.contains(#""id":"fake""#) && models.bodyText.contains(#""id":"fake-alias""#))

                    // The client's key is the front's; the back fleet takes only its own, so an answer proves the
                    // front sent the back's key and not the client's.
                    let stream = try await client.fetch(UpstreamRequest(
                        method: "POST", url: frontURL + "/v1/chat/completions",
                        headers: [("Content-Type", "application/json"), ("Authorization", "Bearer \(Self.frontKey)")],
                        body: Array(#"{"model":"fake-alias","stream":true,"messages":[{"role":"user","content":"hi"}]}"#.utf8),
                        totalTimeout: .seconds(30)))
                    #expect(stream.status == 200, "\(stream.bodyText)")
                    #expect(stream.bodyText.hasSuffix("data: [DONE]\n\n") && stream.bodyText.contains(#""model":"fake-alias""#))
                    #expect(stream.header("X-Fleet-Instance") == backURL)

                    let wrong = try await client.fetch(UpstreamRequest(
                        method: "POST", url: frontURL + "/v1/chat/completions",
                        headers: [("Content-Type", "application/json"), ("Authorization", "Bearer \(Self.backKey)")],
                        body: Array(#"{"model":"fake","messages":[]}"#.utf8)))
                    #expect(wrong.status == 401, "the back fleet's key is not a key of the front")
                }
                let served = try #require(try await control.status().instances.first { $0.id == backURL }?.traffic?.served)
                #expect(served == 1)
            }
        }
    }

    @Test func endpointsAndPeersTakeAKeyOrTheNameOfAnEnvironmentVariableHoldingIt() throws {
        setenv("FLEET_TEST_BACK_KEY", "from-the-environment-1", 1)
        let config = try FleetConfig.decode(Data(#"""
            { "peers": [ { "url": "http://10.0.0.8:8090", "apiKeyEnv": "FLEET_TEST_BACK_KEY" } ],
              "models": { "m": { "endpoints": [ "http://10.0.0.5:8080", { "url": "http://10.0.0.7:8090/", "apiKey": "k-12345678" } ] } } }
            """#.utf8), source: "test", baseDirectory: "/tmp")
        #expect(config.peers == [Peer(url: "http://10.0.0.8:8090", apiKey: "from-the-environment-1")])
        #expect(config.models[0].endpoints == ["http://10.0.0.5:8080", "http://10.0.0.7:8090"])
        #expect(config.models[0].endpointKeys == ["http://10.0.0.7:8090": "k-12345678"])
        #expect {
            try FleetConfig.decode(Data(#"{ "peers": [ { "url": "http://x:1", "apiKeyEnv": "FLEET_TEST_UNSET_VARIABLE" }, { "apiKey": "k" } ], "models": {} }"#.utf8),
                                   source: "test", baseDirectory: "/tmp")
        } throws: { error in
            let text = "\(error)"
            return text.contains("peers[0].apiKeyEnv") && text.contains("FLEET_TEST_UNSET_VARIABLE is not set") && text.contains("peers[1].url")
        }
    }
}
