import FleetTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import Testing
@testable import FleetConfig
@testable import FleetUpstream
@testable import FleetClient
@testable import FleetServer
@testable import FleetCore

@Suite("API keys over a running controller", .timeLimit(.minutes(2)))
struct APIKeyControllerTests {
    let directory = temporaryDirectory()

    func keyedConfig() -> FleetConfig {
        fakeFleetConfig(directory: directory) { $0.keys = KeySet(user: ["user-key-1234"], admin: ["admin-key-5678"]) }
    }

    func request(_ url: String, method: String = "GET", key: String? = nil, header: String = "Authorization",
                 body: String? = nil) async throws -> UpstreamResponse {
        var headers: [(String, String)] = [("Content-Type", "application/json")]
        if let key { headers.append((header, header == "Authorization" ? "Bearer \(key)" : key)) }
        return try await UpstreamClient.with {
            try await $0.fetch(UpstreamRequest(method: method, url: url, headers: headers, body: body.map { ByteBuffer(string: $0) },
                                               totalTimeout: .seconds(30)))
        }
    }

    @Test func everyRouteButHealthNeedsAKeyAndTheControlRoutesAnAdminKey() async throws {
        let config = keyedConfig()
        try await withController(config) { url, keyed in
            #expect(try await request(url + "/health").status == 200, "health stays open for load balancers")

            let refused = try await request(url + "/status")
            #expect(refused.status == 401)
            #expect(refused.header("www-authenticate")?.hasPrefix("Bearer") == true)
            let error = try JSONSerialization.jsonObject(with: Data(refused.body.readableBytesView)) as? [String: Any]
            #expect((error?["error"] as? [String: Any])?["code"] as? String == "invalid_api_key", "OpenAI-shaped")
            #expect(try await request(url + "/status", key: "wrong-key-0000").status == 401)
            let status = try await request(url + "/status", key: "user-key-1234")
            #expect(status.status == 200)
            #expect(!status.bodyText.contains("user-key-1234") && !status.bodyText.contains("admin-key-5678"),
                    "keys never appear in status")
            #expect(try await request(url + "/metrics", key: "user-key-1234").status == 200)
            #expect(try await request(url + "/metrics").status == 401)

            let completion = #"{"model":"fake","prompt":"hi"}"#
            #expect(try await request(url + "/v1/completions", method: "POST", body: completion).status == 401)
            #expect(try await request(url + "/v1/completions", method: "POST", key: "user-key-1234", body: completion).status == 200)
            #expect(try await request(url + "/v1/completions", method: "POST", key: "user-key-1234", header: "x-api-key",
                                      body: completion).status == 200)
            #expect(try await request(url + "/v1/models", key: "admin-key-5678").status == 200, "an admin key does everything")

            let forbidden = try await request(url + "/control/restart/fake", method: "POST", key: "user-key-1234")
            #expect(forbidden.status == 403)
            #expect(forbidden.bodyText.contains("admin_key_required"))
            #expect(try await request(url + "/control/restart/fake", method: "POST", key: "admin-key-5678").status == 200)

            // The dashboard: a browser gets a login prompt for the page, and the key as Basic password works.
            let page = try await request(url + "/")
            #expect(page.status == 401 && page.header("www-authenticate")?.hasPrefix("Basic") == true)
            let basic = "Basic " + Data("me:user-key-1234".utf8).base64EncodedString()
            let signedIn = try await UpstreamClient.with {
                try await $0.fetch(UpstreamRequest(url: url + "/", headers: [("Authorization", basic)]))
            }
            #expect(signedIn.status == 200 && signedIn.bodyText.contains("<html"))

            // The CLI's client: no key says what to do; the admin key works.
            await #expect(throws: ControlClient.Unauthorized.self) { try await ControlClient(baseURL: url).status() }
            await #expect(throws: ControlClient.Unauthorized.self) {
                try await ControlClient(baseURL: url, apiKey: "user-key-1234").restart(model: "fake")
            }
            #expect(try await keyed.status().readyCount == 1)
            // Reload sends the key too: a user key is refused as such, the admin key reaches the route (which
            // says this fleet has no fleet.json to read).
            await #expect(throws: ControlClient.Unauthorized.self) {
                try await ControlClient(baseURL: url, apiKey: "user-key-1234").reload()
            }
            do {
                _ = try await keyed.reload()
                Issue.record("a fleet without fleet.json cannot reload")
            } catch {
                #expect("\(error)".contains("not started from a fleet.json"), "\(error)")
            }
        }
    }

    @Test func theCLIFindsItsKeyInTheEnvironmentOrTheConfig() async throws {
        let config = keyedConfig()
        try await withController(config) { url, _ in
            let without = try await runCommand(Products.fleet, ["status", "--url", url, "--config", directory + "/none.json"])
            #expect(without.code != 0)
            #expect(without.output.contains("requires an API key") && without.output.contains("FLEET_API_KEY"), "\(without.output)")
            let fromEnvironment = try await runCommand(Products.fleet, ["status", "--url", url, "--config", directory + "/none.json"],
                                                       environment: ["FLEET_API_KEY": "user-key-1234"])
            #expect(fromEnvironment.code == 0, "\(fromEnvironment.output)")
            let file = directory + "/fleet.json"
            FileManager.default.createFile(atPath: file, contents: Data(#"{ "adminKeys": ["admin-key-5678"], "models": {} }"#.utf8))
            let fromConfig = try await runCommand(Products.fleet, ["status", "--url", url, "--config", file])
            #expect(fromConfig.code == 0, "\(fromConfig.output)")
        }
    }

    @Test func aListenAddressBeyondLoopbackWithoutKeysIsRefusedUnlessAllowed() async throws {
        var config = fakeFleetConfig(directory: directory)
        config.listen = ListenAddress(host: "0.0.0.0", port: config.listen.port)
        let controller = FleetController(config: config, executable: Products.fakeServer, logger: testLogger, handleSignals: false)
        await #expect(throws: FleetConfig.UnprotectedListen.self) { try await controller.run() }
        #expect(processes(matching: directory).isEmpty, "nothing was started")

        let file = directory + "/open.json"
        FileManager.default.createFile(atPath: file, contents: Data(#"{ "listen": "0.0.0.0:\#(config.listen.port)", "models": { "m": { "path": "model.gguf" } } }"#.utf8))
        let refused = try await runCommand(Products.fleet, ["up", "--config", file])
        #expect(refused.code == 2)
        #expect(refused.output.contains("--allow-unauthenticated") && refused.output.contains("apiKeys"), "\(refused.output)")
    }
}
