import Foundation
public import Hummingbird
import HTTPTypes
import FleetConfig

/// Requires a key on every route but `/health` when the fleet has keys: `Authorization: Bearer KEY`,
/// `x-api-key: KEY`, or HTTP Basic with the key as password (what a browser sends after its login prompt, so
/// the dashboard works in a browser). The mutating control endpoints (`POST /control/...`) need an admin key
/// when `adminKeys` are set. Refusals are OpenAI-shaped errors: 401 without a valid key, 403 with a key that may
/// not do this.
public struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let keys: APIKeys

    public init(keys: APIKeys) {
        self.keys = keys
    }

    public func handle(_ request: Request, context: Context,
                       next: (Request, Context) async throws -> Response) async throws -> Response {
        if let refused = refused(request) { return refused }
        return try await next(request, context)
    }

    /// The answer to a request without the key it needs; nil to let it through. A plain function, so `handle`'s
    /// frame stays small (see `GatewayRoutes.handle`).
    func refused(_ request: Request) -> Response? {
        let current = keys.keys
        let path = request.uri.path
        guard current.isEnabled, path != "/health" else { return nil }
        let needsAdmin = request.method == .post && path.hasPrefix("/control/")
        switch current.grant(for: Self.presentedKey(request.headers)) {
        case .admin:
            return nil
        case .user where !needsAdmin:
            return nil
        case .user:
            return GatewayError(status: .forbidden,
                               message: "this key may not change the fleet: restart, swap, reload and shutdown need one of adminKeys",
                               type: "permission_error", code: "admin_key_required").response(forPath: path)
        case .none:
            var response = GatewayError(
                status: .unauthorized,
                message: "a valid API key is required: send \"Authorization: Bearer KEY\" (or \"x-api-key: KEY\") with one of the fleet's apiKeys; the fleet CLI reads FLEET_API_KEY or the keys of its fleet.json",
                type: "invalid_request_error", code: "invalid_api_key").response(forPath: path)
            // Browsers (the dashboard) answer a Basic challenge with a login prompt; API clients read the body.
            let browser = request.method == .get && (path == "/" || path == "/ui")
            response.headers[.wwwAuthenticate] = browser ? #"Basic realm="fleet", charset="UTF-8""# : #"Bearer realm="fleet""#
            return response
        }
    }

    /// The key a request carries, if any.
    static func presentedKey(_ headers: HTTPFields) -> String? {
        if let value = headers[.authorization] {
            let parts = value.split(separator: " ", maxSplits: 1)
            if parts.count == 2 {
                let scheme = parts[0].lowercased()
                let credential = String(parts[1]).trimmingCharacters(in: .whitespaces)
                if scheme == "bearer" { return credential }
                if scheme == "basic", let data = Data(base64Encoded: credential),
                   let decoded = String(data: data, encoding: .utf8), let colon = decoded.firstIndex(of: ":") {
                    // user:password — the key is the password; a key typed as the user name is accepted too.
                    let password = String(decoded[decoded.index(after: colon)...])
                    return password.isEmpty ? String(decoded[..<colon]) : password
                }
            }
        }
        if let name = HTTPField.Name("x-api-key"), let value = headers[name] {
            return value.trimmingCharacters(in: .whitespaces)
        }
        return nil
    }
}
