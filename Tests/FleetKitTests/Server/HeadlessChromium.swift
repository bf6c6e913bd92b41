import FleetTestSupport
import Foundation
import Testing

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
