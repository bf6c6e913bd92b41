import FleetTestSupport
import Foundation
import HTTPTypes
import Testing
@testable import FleetConfig
@testable import FleetUpstream
@testable import FleetCore
@testable import FleetClient

/// The same rules on a running controller, with and without keys: nothing a page can send gets through.
@Suite("browser guard on a running controller", .timeLimit(.minutes(2)))
struct BrowserGuardControllerTests {
    let directory = temporaryDirectory()

    @Test(arguments: [false, true])
    func noCrossSiteOrRebindingAttemptSucceeds(withKeys: Bool) async throws {
        let config = fakeFleetConfig(directory: directory) {
            if withKeys { $0.keys = KeySet(user: ["user-key-123"], admin: ["admin-key-123"]) }
        }
        try await withController(config) { url, control in
            let key: [(String, String)] = withKeys ? [("Authorization", "Bearer admin-key-123")] : []
            let attacks: [(path: String, headers: [(String, String)])] = [
                ("/control/shutdown", [("Origin", "http://evil.example"), ("Content-Type", "text/plain")]),
                ("/control/shutdown", [("Content-Type", "text/plain")]),
                ("/control/shutdown", [("Sec-Fetch-Site", "cross-site"), ("Content-Type", "application/json")]),
                ("/control/reload", [("Content-Type", "application/x-www-form-urlencoded")]),
                ("/control/restart/fake", [("Origin", "http://evil.example"), ("X-Fleet-Client", "x")]),
                ("/control/swap/fake", [("Host", "rebound.evil.example"), ("X-Fleet-Client", "x")]),
            ]
            try await UpstreamClient.with { client in
                for attack in attacks {
                    let answer = try await client.fetch(UpstreamRequest(method: "POST", url: url + attack.path,
                                                                        headers: attack.headers + key, body: Array("x".utf8)))
                    #expect(answer.status == 403, "\(attack.path) \(attack.headers): \(answer.bodyText)")
                }
                for path in ["/status", "/logs/fake", "/metrics", "/"] {
                    let read = try await client.fetch(UpstreamRequest(url: url + path, headers: [("Host", "rebound.evil.example:1")] + key))
                    #expect(read.status == 403 && read.bodyText.contains("host_not_allowed"), "\(path): \(read.bodyText)")
                }
            }
            // Still up, untouched: the same instance, never restarted.
            let status = try await control.status()
            #expect(status.readyCount == 1 && status.instances[0].generation == 0)
            // The CLI's own requests (which send X-Fleet-Client) still control it.
            let restarted = try await control.restart(model: "fake")
            #expect(restarted.replaced.count == 1)
        }
    }
}
