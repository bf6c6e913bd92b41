import Foundation

/// The dashboard that `GET /` and `GET /ui` serve: `Resources/dashboard.html`, one self-contained page (HTML, CSS and JavaScript, no build
/// step, nothing fetched from elsewhere, so it works offline) that polls `GET /status` once a second and renders
/// every model and instance. It reads the same JSON as `fleet status --json`; to show something new, add it to
/// `FleetStatus` first, then here.
///
/// Rules the script keeps: every value from the controller reaches the DOM through `textContent` or
/// `setAttribute`, never `innerHTML`; one request in flight at a time (the next poll is scheduled when the last
/// one ends, and a hung one is aborted after 5 s); URLs are relative (`status`, `control/restart/…`), so the page
/// also works behind a proxy that mounts fleet under a path. Elements carry `data-model`, `data-instance` and
/// `data-state` for tests and scripts.
enum DashboardPage {
    /// The page, read once from the module's resources; nil when they are not beside the executable.
    static let html: String? = {
        // SwiftPM puts a module's resources in a bundle beside the executable. Looked up by hand rather than
        // through `Bundle.module`, which stops the process when the bundle is missing (a `fleet` binary copied
        // without it): here that only costs the dashboard, which says so.
        let name = "fleet_FleetServer.resources"
        var folders: [URL] = []
        if let executable = Bundle.main.executableURL?.resolvingSymlinksInPath() {
            folders.append(executable.deletingLastPathComponent())
        }
        folders.append(Bundle.main.bundleURL)
        for folder in folders {
            for candidate in [folder.appendingPathComponent(name), folder.appendingPathComponent(name).appendingPathComponent("Resources")] {
                let file = candidate.appendingPathComponent("dashboard.html")
                if let text = try? String(contentsOf: file, encoding: .utf8) { return text }
            }
        }
        return nil
    }()

    /// What `GET /` answers when the page cannot be found.
    static let missing = """
        <!doctype html><meta charset="utf-8"><title>fleet</title>
        <p>fleet's dashboard page (fleet_FleetServer.resources/dashboard.html) is not installed beside the fleet
        executable. Copy that folder from the build (.build/release/) next to the binary, or use
        <a href="status">/status</a> and <code>fleet status</code>.</p>
        """
}
