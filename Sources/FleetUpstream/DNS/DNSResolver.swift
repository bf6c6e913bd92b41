import Foundation

/// Finds the members a `discover` entry names: the addresses of a name (A and AAAA), or the hosts and ports of
/// its SRV records (each target resolved to its addresses). Asks the given DNS servers in order: fleet.json's
/// `resolver`, else the nameservers of /etc/resolv.conf with its `search` list for names with fewer dots than
/// `ndots`, as the system resolver does (what makes a Kubernetes service's short name work).
public struct DNSResolver: Sendable {
    public let servers: [DNSServer]
    public let search: [String]
    public let ndots: Int

    public init(servers: [DNSServer], search: [String] = [], ndots: Int = 1) {
        self.servers = servers
        self.search = search
        self.ndots = ndots
    }

    /// The nameservers, search list and `ndots` of /etc/resolv.conf (127.0.0.1 when it names none).
    public static func system(resolvConf path: String = "/etc/resolv.conf") -> DNSResolver {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        var servers: [DNSServer] = [], search: [String] = [], ndots = 1
        for line in text.split(whereSeparator: \.isNewline) {
            let words = line.split(whereSeparator: \.isWhitespace).map(String.init)
            guard let keyword = words.first, !keyword.hasPrefix("#"), !keyword.hasPrefix(";") else { continue }
            switch keyword {
            case "nameserver" where words.count > 1: servers.append(DNSServer(host: words[1]))
            case "search", "domain": search = Array(words.dropFirst())
            case "options":
                for option in words.dropFirst() where option.hasPrefix("ndots:") { ndots = Int(option.dropFirst(6)) ?? ndots }
            default: break
            }
        }
        return DNSResolver(servers: servers.isEmpty ? [DNSServer(host: "127.0.0.1")] : servers, search: search, ndots: ndots)
    }

    /// A member found in DNS: where it listens, and how long the records that named it may be kept.
    public struct Found: Sendable, Equatable {
        public var urls: [String]
        /// The shortest TTL among the records (nil when there were none).
        public var ttl: Duration?
    }

    /// `http://ADDRESS:port` for every A and AAAA record of `name`, sorted.
    public func addresses(of name: String, port: Int) async throws -> Found {
        let (addresses, ttl) = try await lookUp(name)
        return Found(urls: addresses.map { Self.url($0, port: port) }.sorted(), ttl: ttl.map { .seconds(Int64($0)) })
    }

    /// `http://ADDRESS:port` for every SRV record of `name` (its target's addresses, its port), sorted.
    public func services(of name: String) async throws -> Found {
        let records = try await ask(name, .srv).records
        var urls: Set<String> = []
        var ttls = records.map(\.ttl)
        for case .service(_, _, let port, let target, _) in records {
            let (addresses, ttl) = try await lookUp(target)
            ttls += ttl.map { [$0] } ?? []
            for address in addresses { urls.insert(Self.url(address, port: Int(port))) }
        }
        return Found(urls: urls.sorted(), ttl: ttls.min().map { .seconds(Int64($0)) })
    }

    /// The A and AAAA records of `name` (an address literal is its own), and their shortest TTL in seconds.
    private func lookUp(_ name: String) async throws -> (addresses: [String], ttl: UInt32?) {
        if Self.isAddress(name) { return ([name], nil) }
        let (v4, found) = try await ask(name, .a)
        // The name the search found A records under; when there were none, search again for AAAA.
        let v6 = try await ask(v4.isEmpty ? name : found, .aaaa, searching: v4.isEmpty).records
        let records = v4 + v6
        let addresses = records.compactMap { record -> String? in
            if case .address(let address, _) = record { return address } else { return nil }
        }
        return (addresses, records.map(\.ttl).min())
    }

    /// The records of `type` for the first name of the search order that has any, and that name.
    private func ask(_ name: String, _ type: DNSClient.RecordType, searching: Bool = true) async throws -> (records: [DNSRecord], name: String) {
        let trimmed = name.hasSuffix(".") ? String(name.dropLast()) : name
        var candidates = [trimmed]
        if searching && !name.hasSuffix(".") && !search.isEmpty {
            let suffixed = search.map { trimmed + "." + $0 }
            candidates = trimmed.filter { $0 == "." }.count >= ndots ? [trimmed] + suffixed : suffixed + [trimmed]
        }
        for candidate in candidates {
            let records = try await askServers(candidate, type)
            if !records.isEmpty { return (records, candidate) }
        }
        return ([], trimmed)
    }

    /// The first server that answers; the last failure when none does.
    private func askServers(_ name: String, _ type: DNSClient.RecordType) async throws -> [DNSRecord] {
        var failure: (any Error)?
        for server in servers {
            do {
                return try await DNSClient.query(name, type: type, server: server)
            } catch {
                failure = error
            }
        }
        throw failure ?? DNSError(description: "no DNS server to ask")
    }

    private static func isAddress(_ text: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }

    private static func url(_ address: String, port: Int) -> String {
        address.contains(":") ? "http://[\(address)]:\(port)" : "http://\(address):\(port)"
    }
}
