import FleetTestSupport
import Foundation
import Testing
@testable import FleetUpstream
@testable import FleetServer

/// The dashboard page: served at `/` and `/ui`, and rendered by a real headless Chromium against a running fleet.
@Suite("dashboard", .timeLimit(.minutes(3)))
struct DashboardTests {
    let directory = temporaryDirectory()

    @Test func rootAndUIServeTheSelfContainedPage() async throws {
        try await withController(fakeFleetConfig(directory: directory)) { url, _ in
            try await UpstreamClient.with { client in
                for path in ["/", "/ui"] {
                    let response = try await client.fetch(UpstreamRequest(url: url + path))
                    #expect(response.status == 200, "\(path)")
                    #expect(response.header("content-type") == "text/html; charset=utf-8", "\(path)")
                    #expect(response.header("content-security-policy")?.contains("frame-ancestors 'none'") == true)
                    #expect(response.bodyText == DashboardPage.html, "\(path)")
                }
            }
        }
        // The page is the module's resource file, found beside the executable.
        let page = try #require(DashboardPage.html, "Resources/dashboard.html was not found beside the test executable")
        #expect(page.hasPrefix("<!doctype html>") && page.contains("X-Fleet-Client"))
        // Offline by construction: nothing is loaded from another origin, and data only enters as text.
        #expect(!page.contains("http://") && !page.contains("https://"))
        #expect(!page.contains("innerHTML"))
    }

    @Test func headlessChromiumRendersEveryInstanceOfARunningFleet() async throws {
        let chromium = try #require(HeadlessChromium.locate(in: directory),
                                    "no chromium: run scripts/install-deps.sh (it installs Debian's chromium), or set FLEET_CHROMIUM")
        try await withController(fakeFleetConfig(directory: directory, replicas: 2)) { url, _ in
            // One answer, so that llama-server's (here the fake's) prompt-cache figures have something to show.
            let answer = try await UpstreamClient.with {
                try await post(url + "/v1/chat/completions", #"{"model":"fake","messages":[{"role":"user","content":"hi"}]}"#, client: $0)
            }
            #expect(answer.status == 200)
            let dom = try await chromium.dumpDOM(url + "/")
            for id in ["fake/0", "fake/1"] {
                let row = try #require(openingTag(with: #"data-instance="\#(id)""#, in: dom), "no row for \(id) in:\n\(dom)")
                #expect(row.hasPrefix("<tr") && row.contains(#"data-state="ready""#), "\(row)")
            }
            #expect(dom.contains(#"data-model="fake""#) && dom.contains(#"data-restart="fake""#))
            #expect(dom.contains("% hit"), "the model's prompt-cache hit ratio is shown")
            #expect(openingTag(with: #"id="connection""#, in: dom)?.contains("hidden") == true,
                    "the page shows a connection problem:\n\(dom)")

            // The same page with nothing to show: loaded from a file, its fetch of `status` fails.
            let offline = directory + "/offline.html"
            try #require(DashboardPage.html).write(toFile: offline, atomically: true, encoding: .utf8)
            let skeleton = try await chromium.screenshot("file://" + offline, to: directory + "/offline.png")
            let blank = try await chromium.screenshot("about:blank", to: directory + "/blank.png")
            let page = try await chromium.screenshot(url + "/ui", to: directory + "/dashboard.png")
            for shot in [blank, skeleton, page] {
                #expect(shot.width == 1280 && shot.height == 800, "\(shot)")
            }
            // Without decoding the pixels: a PNG compresses flat colour to almost nothing, so the rendered tables
            // and text must weigh clearly more than an empty page and than the page's bare frame.
            #expect(page.bytes > 4 * blank.bytes, "dashboard \(page), about:blank \(blank)")
            #expect(page.bytes > skeleton.bytes + skeleton.bytes / 2, "dashboard \(page), without data \(skeleton)")
        }
    }

    /// The start tag of the first element whose attributes contain `attribute`.
    func openingTag(with attribute: String, in html: String) -> String? {
        guard let hit = html.range(of: attribute),
              let start = html[..<hit.lowerBound].lastIndex(of: "<"),
              let end = html[hit.upperBound...].firstIndex(of: ">") else { return nil }
        return String(html[start...end])
    }
}
