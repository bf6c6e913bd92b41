import FleetTestSupport
import Foundation
import HTTPTypes
import Testing
@testable import FleetServer

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
