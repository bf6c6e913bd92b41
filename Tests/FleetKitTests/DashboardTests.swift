import FleetTestSupport
import Foundation
import Testing
@testable import FleetClient
@testable import FleetConfig
@testable import FleetCore
@testable import FleetRouting
@testable import FleetServer
@testable import FleetSupervision
@testable import FleetUpstream

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
            let dom = try await chromium.dumpDOM(url + "/")
            for id in ["fake/0", "fake/1"] {
                let row = try #require(openingTag(with: #"data-instance="\#(id)""#, in: dom), "no row for \(id) in:\n\(dom)")
                #expect(row.hasPrefix("<tr") && row.contains(#"data-state="ready""#), "\(row)")
            }
            #expect(dom.contains(#"data-model="fake""#) && dom.contains(#"data-restart="fake""#))
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

/// Debian's chromium, headless, under `timeout` so a hung browser fails the test instead of holding it.
struct HeadlessChromium {
    let executable: String
    /// A throwaway profile, so no state leaks between runs or from a desktop profile.
    let profile: String

    /// `FLEET_CHROMIUM`, else `chromium` or `chromium-browser` on `PATH`.
    static func locate(in directory: String) -> HeadlessChromium? {
        let environment = ProcessInfo.processInfo.environment
        let candidates: [String]
        if let path = environment["FLEET_CHROMIUM"], !path.isEmpty {
            candidates = [path]
        } else {
            let folders = (environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
            candidates = ["chromium", "chromium-browser"].flatMap { name in folders.map { "\($0)/\(name)" } }
        }
        guard let found = candidates.first(where: FileManager.default.isExecutableFile(atPath:)) else { return nil }
        return HeadlessChromium(executable: found, profile: directory + "/chromium-profile")
    }

    /// The DOM after the page's scripts ran for 5 s of virtual time (virtual time waits for pending fetches, so
    /// the first `/status` answer is in whatever the machine's speed).
    func dumpDOM(_ url: String) async throws -> String {
        let (code, output) = try await run(["--dump-dom", url])
        try #require(code == 0, "chromium --dump-dom exited \(code):\n\(output)")
        return output
    }

    struct Screenshot: CustomStringConvertible {
        var width: Int
        var height: Int
        var bytes: Int
        var description: String { "\(width)×\(height) PNG of \(bytes) bytes" }
    }

    /// A 1280×800 PNG of the page, with its size read from the IHDR chunk.
    func screenshot(_ url: String, to path: String) async throws -> Screenshot {
        let (code, output) = try await run(["--window-size=1280,800", "--screenshot=\(path)", url])
        try #require(code == 0, "chromium --screenshot exited \(code):\n\(output)")
        let data = try #require(FileManager.default.contents(atPath: path), "no screenshot at \(path):\n\(output)")
        let png = [UInt8](data)
        try #require(png.count > 24 && png.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
                     && png[12..<16].elementsEqual("IHDR".utf8), "\(path) is not a PNG")
        func uint32(at offset: Int) -> Int { png[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) } }
        return Screenshot(width: uint32(at: 16), height: uint32(at: 20), bytes: png.count)
    }

    private func run(_ arguments: [String]) async throws -> (code: Int32, output: String) {
        // Root needs --no-sandbox; --kill-after because a SIGTERM may find its signals blocked.
        try await runCommand("/usr/bin/timeout", ["--kill-after=10", "60", executable,
                                                  "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                                  "--no-first-run", "--user-data-dir=\(profile)",
                                                  "--virtual-time-budget=5000"] + arguments)
    }
}
