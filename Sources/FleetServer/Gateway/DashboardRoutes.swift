public import Hummingbird
import NIOCore

/// The dashboard: `GET /` and `GET /ui` answer the same self-contained page (`DashboardPage`), which reads
/// `/status` and calls `/control/restart/{model}` from the browser, like any other client of the control API.
public struct DashboardRoutes: Sendable {
    public init() {}

    public func register(on router: Router<some RequestContext>) {
        router.get("/") { _, _ in Self.page() }
        router.get("/ui") { _, _ in Self.page() }
    }

    /// The page as bytes, encoded once.
    private static let body = ByteBuffer(string: DashboardPage.html ?? DashboardPage.missing)

    /// `no-cache`, so a browser picks up the page of an upgraded fleet; the policy keeps the page to its own
    /// inline script and style and its own origin, and out of other sites' frames (its Restart buttons act).
    static func page() -> Response {
        Response(status: .ok,
                 headers: [.contentType: "text/html; charset=utf-8",
                           .cacheControl: "no-cache",
                           .xContentTypeOptions: "nosniff",
                           .contentSecurityPolicy: contentSecurityPolicy],
                 body: ResponseBody(byteBuffer: body))
    }

    static let contentSecurityPolicy = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        + "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}
