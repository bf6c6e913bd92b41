import FleetTestSupport
import Foundation
import HTTPTypes
import Testing
@testable import FleetClient
@testable import FleetConfig
@testable import FleetCore
@testable import FleetRouting
@testable import FleetServer
@testable import FleetSupervision
@testable import FleetUpstream

/// A web page the user opens must not control the fleet (CSRF) nor read it through a rebound name.
@Suite("browser guard: cross-site requests and DNS rebinding")
struct BrowserGuardTests {
    let hosts = AllowedHosts(configured: ["fleet.lan"], listenHost: "127.0.0.1", machineHostname: "workstation.example.org")

    func refusal(_ method: HTTPRequest.Method = .post, _ path: String = "/control/shutdown", host: String? = "127.0.0.1:8090",
                 _ headers: [(String, String)] = []) -> String? {
        var fields = HTTPFields()
        for (name, value) in headers { fields[HTTPField.Name(name)!] = value }
        return BrowserGuard<FleetRequestContext>.refusal(method: method, path: path, host: host, headers: fields,
                                                         allowedHosts: hosts)?.code
    }

    @Test(arguments: ["127.0.0.1:8090", "localhost:8090", "LOCALHOST", "app.localhost:8090", "[::1]:8090", "10.1.2.3",
                      "fleet.lan:8090", "workstation", "workstation.example.org:8090", "127.0.0.1"])
    func hostsThatNameThisMachinePass(host: String) {
        #expect(hosts.allows(hostHeader: host))
    }

    @Test(arguments: ["evil.example", "evil.example:8090", "127.0.0.1.evil.example", "localhost.evil.example",
                      "1.2.3.4.nip.io", "fleet.lan.evil", ""])
    func otherNamesAreRefused(host: String) {
        #expect(!hosts.allows(hostHeader: host))
    }

    @Test func aStarAllowsEveryName() {
        #expect(AllowedHosts(configured: ["*"], listenHost: "127.0.0.1", machineHostname: nil).allows(hostHeader: "evil.example"))
    }

    @Test func controlRoutesNeedJSONOrTheFleetHeader() {
        #expect(refusal(.post, "/control/shutdown", [("Content-Type", "text/plain")]) == "control_header_required")
        #expect(refusal(.post, "/control/reload", [("Content-Type", "application/x-www-form-urlencoded")]) == "control_header_required")
        #expect(refusal(.post, "/control/restart/x", [("Content-Type", "multipart/form-data; boundary=x")]) == "control_header_required")
        #expect(refusal(.post, "/control/shutdown", [("Content-Type", "application/json")]) == nil)
        #expect(refusal(.post, "/control/shutdown", [("X-Fleet-Client", "cli")]) == nil)
        #expect(refusal(.post, "/v1/chat/completions", [("Content-Type", "application/x-www-form-urlencoded")]) == nil,
                "curl -d sends a form type: the gateway takes it from non-browser clients")
    }

    @Test func crossSiteRequestsAreRefusedWhateverTheirHeaders() {
        let json = ("Content-Type", "application/json")
        #expect(refusal(.post, "/control/shutdown", [json, ("Origin", "http://evil.example")]) == "cross_site_request")
        #expect(refusal(.post, "/control/shutdown", [json, ("Origin", "null")]) == "cross_site_request")
        #expect(refusal(.post, "/control/shutdown", [json, ("Origin", "http://127.0.0.1:3000")]) == "cross_site_request",
                "another port is another origin")
        #expect(refusal(.post, "/control/shutdown", [json, ("Sec-Fetch-Site", "cross-site")]) == "cross_site_request")
        #expect(refusal(.post, "/control/shutdown", [json, ("Sec-Fetch-Site", "same-site")]) == "cross_site_request")
        #expect(refusal(.post, "/v1/completions", [("Origin", "http://evil.example")]) == "cross_site_request",
                "a page may not spend the user's compute either")
        // The dashboard, served from the same origin.
        #expect(refusal(.post, "/control/restart/gemma", [("X-Fleet-Client", "dashboard"), ("Origin", "http://127.0.0.1:8090"),
                                                          ("Sec-Fetch-Site", "same-origin")]) == nil)
        #expect(refusal(.post, "/control/restart/gemma", host: "localhost", [("X-Fleet-Client", "dashboard"),
                                                                               ("Origin", "http://localhost")]) == nil)
    }

    @Test func readsPassUnlessTheHostIsForeign() {
        #expect(refusal(.get, "/status", [("Origin", "http://evil.example")]) == nil, "a browser never lets that page read the answer")
        #expect(refusal(.get, "/status", host: "rebound.evil.example:8090") == "host_not_allowed")
        #expect(refusal(.get, "/logs/gemma", host: "rebound.evil.example:8090") == "host_not_allowed")
    }
}

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
