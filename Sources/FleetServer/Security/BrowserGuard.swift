import Foundation
import Glibc
public import Hummingbird
import HTTPTypes

/// Keeps web pages out of the controller, with or without API keys: a page the user opens must not be able to
/// shut the fleet down (cross-site request forgery) nor read `/status` or `/logs` through a hostname it
/// rebinds to 127.0.0.1 (DNS rebinding).
///
/// - **Host**: every request's `Host` must name this controller: an IP address, `localhost` (or a
///   `*.localhost` name), this machine's hostname, the `listen` host, or one of `allowedHosts` (`"*"` allows
///   any). A rebinding page always sends its own domain name, so it gets 403.
/// - **Cross-site**: a request that changes something (any method but GET and HEAD) is refused when the
///   browser says it comes from another site (`Sec-Fetch-Site` other than `same-origin` or `none`) or from
///   another origin (`Origin` that is not this `Host`, or `null`).
/// - **Control routes** (`POST /control/...`) also need `Content-Type: application/json` or an `X-Fleet-Client`
///   header: a plain HTML form cannot send either, and a page's script can send them cross-site only after a
///   CORS preflight, which the controller never grants. The fleet CLI and the dashboard send them.
public struct BrowserGuard<Context: RequestContext>: RouterMiddleware {
    let allowedHosts: AllowedHosts

    public init(allowedHosts: AllowedHosts) {
        self.allowedHosts = allowedHosts
    }

    public func handle(_ request: Request, context: Context,
                       next: (Request, Context) async throws -> Response) async throws -> Response {
        if let refused = refused(request) { return refused }
        return try await next(request, context)
    }

    /// The answer to a request refused; a plain function, so `handle`'s frame stays small (see
    /// `GatewayRoutes.handle`).
    func refused(_ request: Request) -> Response? {
        // HTTP/1's Host header arrives as the request's authority.
        Self.refusal(method: request.method, path: request.uri.path, host: request.head.authority,
                     headers: request.headers, allowedHosts: allowedHosts)?.response(forPath: request.uri.path)
    }

    /// Why the request is refused (403), or nil. Pure, so every rule is tested without a server.
    static func refusal(method: HTTPRequest.Method, path: String, host: String?, headers: HTTPFields,
                        allowedHosts: AllowedHosts) -> GatewayError? {
        if let host, !allowedHosts.allows(hostHeader: host) {
            return GatewayError(
                status: .forbidden,
                message: "Host \"\(host)\" is not this fleet's name; if you reach it by that name, add it to \"allowedHosts\" in fleet.json",
                type: "permission_error", code: "host_not_allowed")
        }
        guard method != .get && method != .head else { return nil }
        if let site = headers[secFetchSite]?.lowercased(), site != "same-origin", site != "none" {
            return crossSite("the browser marked it \(site)")
        }
        if let origin = headers[.origin] {
            guard let host, let originHost = Self.hostAndPort(ofOrigin: origin), originHost == host.lowercased() else {
                return crossSite("it comes from the page at \(origin)")
            }
        }
        if path.hasPrefix("/control/") {
            let json = headers[.contentType]?.lowercased().hasPrefix("application/json") ?? false
            if !json && headers[fleetClient] == nil {
                return GatewayError(
                    status: .forbidden,
                    message: "control requests need \"Content-Type: application/json\" or an \"X-Fleet-Client\" header (so that a web page cannot send them); the fleet CLI and the dashboard send them",
                    type: "permission_error", code: "control_header_required")
            }
        }
        return nil
    }

    private static func crossSite(_ why: String) -> GatewayError {
        GatewayError(status: .forbidden,
                    message: "cross-site request refused (\(why)): only the fleet's own dashboard, its CLI and non-browser clients may send requests that change something",
                    type: "permission_error", code: "cross_site_request")
    }

    /// `http://127.0.0.1:8090` → `127.0.0.1:8090`, lowercased; the default port is left out, as browsers send
    /// `Host` without it.
    static func hostAndPort(ofOrigin origin: String) -> String? {
        guard origin != "null", let url = URL(string: origin), let host = url.host else { return nil }
        let bracketed = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        let defaultPort = url.scheme == "https" ? 443 : 80
        guard let port = url.port, port != defaultPort else { return bracketed.lowercased() }
        return "\(bracketed):\(port)".lowercased()
    }
}

/// Built once: every request is checked.
private let secFetchSite = HTTPField.Name("Sec-Fetch-Site")!
private let fleetClient = HTTPField.Name("X-Fleet-Client")!

/// The names a request's `Host` may carry (see `BrowserGuard`).
public struct AllowedHosts: Sendable, Equatable {
    /// Lowercased names from `allowedHosts`, the listen host and this machine's hostname.
    public var names: Set<String>
    /// `allowedHosts` contains `"*"`: no check.
    public var any: Bool

    public init(configured: [String], listenHost: String, machineHostname: String? = AllowedHosts.machineHostname()) {
        any = configured.contains("*")
        var names = Set(configured.map { $0.lowercased() })
        names.insert(listenHost.lowercased())
        if let machineHostname {
            names.insert(machineHostname.lowercased())
            if let short = machineHostname.split(separator: ".").first { names.insert(short.lowercased()) }
        }
        self.names = names
    }

    /// Whether a `Host` header (`name`, `name:port`, `[v6]:port`) names this controller.
    public func allows(hostHeader: String) -> Bool {
        if any { return true }
        // On every request: read as bytes (a Substring's first and last are whole characters, which cost a
        // grapheme break each), no Foundation and no copy for an address.
        var host = hostHeader.utf8[...]
        let blank = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        while let first = host.first, blank(first) { host = host.dropFirst() }
        while let last = host.last, blank(last) { host = host.dropLast() }
        if host.first == UInt8(ascii: "[") {
            // An IPv6 literal: only an address can be written that way.
            return host.contains(UInt8(ascii: "]"))
        }
        if let colon = host.lastIndex(of: UInt8(ascii: ":")) { host = host[..<colon] }
        if host.last == UInt8(ascii: ".") { host = host.dropLast() }
        if host.isEmpty { return false }
        if Self.isIPv4(host) { return true }
        let name = String(Substring(host)).lowercased()
        if name == "localhost" || name.hasSuffix(".localhost") { return true }
        return names.contains(name)
    }

    /// Four dot-separated decimal numbers up to 255.
    private static func isIPv4(_ text: Substring.UTF8View) -> Bool {
        var parts = 0, digits = 0, value = 0
        for byte in text {
            if byte == UInt8(ascii: ".") {
                guard digits > 0 else { return false }
                parts += 1
                digits = 0
                value = 0
            } else if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                digits += 1
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
                guard digits <= 3, value <= 255 else { return false }
            } else {
                return false
            }
        }
        return parts == 3 && digits > 0
    }

    /// This machine's hostname: people reach a fleet on their LAN by it.
    public static func machineHostname() -> String? {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return nil }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? nil : name
    }
}
