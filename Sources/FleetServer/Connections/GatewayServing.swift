import Hummingbird
import HTTPTypes
import NIOCore

/// What the gateway's channel handler answers with: the gateway's routes behind the same browser and key checks
/// as every other route, called directly (no router and no middleware chain: their async frames would be part of
/// every request's task, which keeps them for as long as it streams). One for the server, shared by every
/// connection's handler (a copy in each was 456 bytes per connection).
final class GatewayServing: Sendable {
    let browserGuard: BrowserGuard<FleetRequestContext>
    let keyCheck: APIKeyMiddleware<FleetRequestContext>
    let routes: GatewayRoutes
    /// `POST` to these paths (the query aside) is answered here; everything else goes on to Hummingbird.
    /// Substrings, so a request's path is looked up without making a string of it.
    let table: [Substring: GatewayRoute]
    let maxBodySize: Int
    /// Each event loop's answers to write, gathered (`LoopWrites`).
    let loopWrites = LoopWritesByLoop()

    init(browserGuard: BrowserGuard<FleetRequestContext>, keyCheck: APIKeyMiddleware<FleetRequestContext>,
         routes: GatewayRoutes, maxBodySize: Int) {
        self.browserGuard = browserGuard
        self.keyCheck = keyCheck
        self.routes = routes
        self.table = Dictionary(uniqueKeysWithValues: GatewayRoute.table.map { (Substring($0.path), $0) })
        self.maxBodySize = maxBodySize
    }

    /// `route`'s answer to `request`, whose body was read (`body`), or the checks' refusal.
    func respond(to request: Request, body: ByteBuffer, route: GatewayRoute, channel: any Channel) async -> Response {
        if let refused = browserGuard.refused(request) ?? keyCheck.refused(request) { return refused }
        return await routes.respond(to: request, body: body, route: route, channel: channel)
    }

    /// The gateway route a request is for, if it is a `POST` to one.
    func route(of head: HTTPRequest) -> GatewayRoute? {
        guard head.method == .post, let path = head.path else { return nil }
        return table[path.prefix { $0 != "?" }]
    }
}
