import Foundation

/// The servers of fleet.json that fleet does not run: `endpoints` (a URL, or `{"url", "apiKey" | "apiKeyEnv"}`),
/// `discover` entries (DNS names whose records are members) and `peers` (other fleets), with the keys fleet sends
/// them.
extension FleetConfig {
    static let discoverKeys = ["dns", "port", "srv", "interval", "apiKey", "apiKeyEnv"]

    /// `discover`: `[{"dns": NAME, "port": N}, {"srv": NAME}]`, each with an optional `interval`.
    static func discoverySources(_ object: [String: JSONValue], at path: String, reader: inout ConfigReader) -> [DiscoverySource] {
        guard let value = object["discover"] else { return [] }
        let entries = array(value, at: "\(path).discover",
                            fix: "write it as [{\"dns\": \"llama.models.svc.cluster.local\", \"port\": 8080}] or [{\"srv\": \"_http._tcp.llama.models.svc.cluster.local\"}]",
                            reader: &reader)
        var sources: [DiscoverySource] = []
        for (index, entry) in entries.enumerated() {
            let at = "\(path).discover[\(index)]"
            guard let fields = reader.object(entry, at: at, allowed: discoverKeys) else { continue }
            let dns = reader.string(fields, "dns", at: at), srv = reader.string(fields, "srv", at: at)
            let port = reader.int(fields, "port", at: at, range: 1...65535)
            let interval = reader.duration(fields, "interval", at: at, minimum: .seconds(1)) ?? .seconds(10)
            let apiKey = key(fields, at: at, reader: &reader)
            switch (dns, srv) {
            case (let name?, nil):
                guard let port else {
                    reader.report("\(at).port", "is required with \"dns\"",
                                  fix: "give the port llama-server listens on at those addresses, like \"port\": 8080")
                    continue
                }
                sources.append(DiscoverySource(.addresses(name: name, port: port), interval: interval, apiKey: apiKey))
            case (nil, let name?):
                if fields["port"] != nil {
                    reader.report("\(at).port", "SRV records carry their own ports", fix: "remove \"port\" here")
                }
                sources.append(DiscoverySource(.services(name: name), interval: interval, apiKey: apiKey))
            default:
                reader.report(at, "needs exactly one of \"dns\" and \"srv\"",
                              fix: "write {\"dns\": NAME, \"port\": PORT} (A/AAAA records) or {\"srv\": NAME} (SRV records)")
            }
        }
        return sources
    }

    static let remoteKeys = ["url", "apiKey", "apiKeyEnv"]

    /// The elements of an array (reporting anything else but null).
    static func array(_ value: JSONValue, at path: String, fix: String = "write it as [\"http://host:port\", ...]",
                      reader: inout ConfigReader) -> [JSONValue] {
        if case .array(let elements) = value { return elements }
        if value != .null { reader.report(path, "expected an array, found \(value.typeName)", fix: fix) }
        return []
    }

    /// `apiKey`, or the value of the environment variable `apiKeyEnv` names (reported when unset).
    static func key(_ fields: [String: JSONValue], at path: String, reader: inout ConfigReader) -> String? {
        let key = reader.string(fields, "apiKey", at: path)
        guard let name = reader.string(fields, "apiKeyEnv", at: path) else { return key }
        if key != nil {
            reader.report("\(path).apiKeyEnv", "apiKey is given too", fix: "keep one of \"apiKey\" and \"apiKeyEnv\"")
            return key
        }
        if let value = ProcessInfo.processInfo.environment[name], !value.isEmpty { return value }
        reader.report("\(path).apiKeyEnv", "the environment variable \(name) is not set",
                      fix: "export \(name)=KEY before `fleet up` (or before `fleet reload`), or write \"apiKey\"")
        return nil
    }

    /// A server fleet does not run: `"http://host:port"`, or `{"url": …, "apiKey": …}` / `{"url": …, "apiKeyEnv":
    /// NAME}` for another fleet's gateway that wants a key (read from the environment variable NAME when fleet
    /// starts or reloads).
    static func remoteServer(_ value: JSONValue, at path: String, reader: inout ConfigReader) -> (url: String, apiKey: String?)? {
        var url: String?, key: String?
        switch value {
        case .string(let text):
            url = text
        case .object:
            guard let fields = reader.object(value, at: path, allowed: remoteKeys) else { return nil }
            url = reader.string(fields, "url", at: path)
            if url == nil, fields["url"] == nil {
                reader.report("\(path).url", "is required", fix: "give the server's address, like \"http://10.0.0.7:8090\"")
            }
            key = Self.key(fields, at: path, reader: &reader)
        default:
            reader.report(path, "expected a URL string or an object, found \(value.typeName)",
                          fix: "write \"http://10.0.0.5:8080\", or {\"url\": \"http://10.0.0.7:8090\", \"apiKeyEnv\": \"BACK_FLEET_KEY\"}")
            return nil
        }
        guard let text = url else { return nil }
        guard let parsed = URL(string: text), parsed.scheme == "http" || parsed.scheme == "https", parsed.host != nil,
              parsed.path.isEmpty || parsed.path == "/" else {
            reader.report(path, "\"\(text)\" is not a server address",
                          fix: "write it like \"http://10.0.0.5:8080\" (scheme, host and port; no path)")
            return nil
        }
        return (text.hasSuffix("/") ? String(text.dropLast()) : text, key)
    }
}
