import FleetTestSupport
import Foundation
import Synchronization
import Testing
@testable import FleetConfig
@testable import FleetCore
@testable import FleetUpstream
@testable import FleetClient

/// A real DNS server for the test: Debian's dnsmasq on a free port, answering from an addn-hosts file (which it
/// re-reads on SIGHUP) and from `srv-host` lines (fixed for its life: changing them means a restart).
final class TestDNSServer: Sendable {
    let port: Int
    let directory: String
    private let process: Mutex<ChildProcess?> = Mutex(nil)

    static var executable: String? {
        ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    init(directory: String) {
        self.port = TestPorts.block(1).lowerBound
        self.directory = directory
    }

    /// Writes the hosts file (`address name` lines) and signals a running server to read it again.
    func setHosts(_ lines: [String]) throws {
        try (lines.joined(separator: "\n") + "\n").write(toFile: directory + "/dns-hosts", atomically: true, encoding: .utf8)
        if let pid = process.withLock({ $0?.processIdentifier }) { kill(pid, SIGHUP) }
    }

    /// Starts (or restarts) the server with these SRV records: `(name, target, port)`.
    func start(services: [(String, String, Int)] = []) async throws {
        stop()
        let executable = try #require(Self.executable, "dnsmasq is missing: scripts/install-deps.sh --test installs it")
        let srv = services.map { "srv-host=\($0.0),\($0.1),\($0.2)" }.joined(separator: "\n")
        try (srv + "\n").write(toFile: directory + "/dns.conf", atomically: true, encoding: .utf8)
        let child = try ChildProcess(executable, [
            "--keep-in-foreground", "--conf-file=\(directory)/dns.conf", "--port=\(port)", "--listen-address=127.0.0.1",
            "--bind-interfaces", "--no-resolv", "--no-hosts", "--local=/test/", "--addn-hosts=\(directory)/dns-hosts", "--local-ttl=1",
            "--user=root", "--pid-file=", "--log-facility=\(directory)/dns.log",
        ])
        process.withLock { $0 = child }
        // Answering once it answers.
        try await eventually("dnsmasq answers") {
            (try? await DNSClient.query("nothing.test", type: .a, server: DNSServer(host: "127.0.0.1", port: port),
                                        timeout: .milliseconds(300))) != nil
        }
    }

    func stop() {
        guard let child = process.withLock({ process in defer { process = nil }; return process }) else { return }
        child.terminate()
        child.waitUntilExit()
    }

    deinit { stop() }
}

/// What the test's load saw: failed requests, and which members answered.
final class DiscoveryLoadTally: Sendable {
    let failures = Mutex(0)
    let served = Mutex<Set<String>>([])
}

@Suite("DNS discovery against a real DNS server (dnsmasq)", .serialized, .timeLimit(.minutes(3)))
struct DiscoveryTests {
    let directory = temporaryDirectory()

    func config(_ source: DiscoverySource, dns: TestDNSServer) -> FleetConfig {
        fakeFleetConfig(directory: directory, replicas: 0) {
            $0.models[0].path = ""
            $0.models[0].discover = [source]
            $0.models[0].parallel = 4
            $0.resolver = ListenAddress(host: "127.0.0.1", port: dns.port)
            $0.healthCheck.interval = .milliseconds(200)
        }
    }

    /// A fake llama-server fleet does not manage, on `host`.
    func fake(on host: String, port: Int, _ args: [String] = []) throws -> ChildProcess {
        try ChildProcess(Products.fakeServer, ["--host", host, "--port", String(port), "--fake-loading-delay", "0"] + args)
    }

    /// The members the model has now, by id (their URL), with their state.
    func members(_ control: ControlClient) async throws -> [String: InstanceState] {
        Dictionary(try await control.status().instances.filter { !$0.managed }.map { ($0.id, $0.state) }, uniquingKeysWith: { $1 })
    }

    @Test func addressRecordsJoinAndLeaveThePoolUnderLoadAndTheLastSetOutlivesTheDNSServer() async throws {
        let dns = TestDNSServer(directory: directory)
        let port = TestPorts.block(1).lowerBound
        let a = try fake(on: "127.0.0.2", port: port, ["--fake-tokens", "20", "--fake-token-delay", "0.05", "--parallel", "4"])
        let b = try fake(on: "127.0.0.3", port: port, ["--fake-tokens", "20", "--fake-token-delay", "0.05", "--parallel", "4"])
        defer { a.terminate(); b.terminate(); dns.stop() }
        try dns.setHosts(["127.0.0.2 llama.test"])
        try await dns.start()
        let memberA = "http://127.0.0.2:\(port)", memberB = "http://127.0.0.3:\(port)"
        let source = DiscoverySource(.addresses(name: "llama.test", port: port), interval: .seconds(1))
        try await withController(config(source, dns: dns), waitForReady: 1) { url, control in
            try await eventually("127.0.0.2 discovered and ready") { try await members(control) == [memberA: .ready] }

            // Steady load through the whole test: every request must succeed.
            let tally = DiscoveryLoadTally()
            let load = Task {
                try await UpstreamClient.with { client in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for _ in 0..<3 {
                            group.addTask {
                                while !Task.isCancelled {
                                    let response = try? await client.fetch(UpstreamRequest(
                                        method: "POST", url: url + "/v1/completions", headers: [("Content-Type", "application/json")],
                                        body: Array(#"{"model":"fake","stream":true}"#.utf8), totalTimeout: .seconds(30)))
                                    if Task.isCancelled { break }
                                    if let response, response.status == 200, response.bodyText.hasSuffix("data: [DONE]\n\n") {
                                        if let instance = response.header("X-Fleet-Instance") { tally.served.withLock { _ = $0.insert(instance) } }
                                    } else {
                                        tally.failures.withLock { $0 += 1 }
                                    }
                                }
                            }
                        }
                        try await group.waitForAll()
                    }
                }
            }
            defer { load.cancel() }

            // A record appears: the second address joins and serves.
            try dns.setHosts(["127.0.0.2 llama.test", "127.0.0.3 llama.test"])
            try await eventually("127.0.0.3 joins") { try await members(control) == [memberA: .ready, memberB: .ready] }
            try await eventually("both serve") { tally.served.withLock { $0 }.isSuperset(of: [memberA, memberB]) }

            // The first record disappears: its member leaves once its requests in flight are done.
            try dns.setHosts(["127.0.0.3 llama.test"])
            try await eventually("127.0.0.2 leaves") { try await members(control) == [memberB: .ready] }
            let discovery = try #require(try await control.status().models.first?.discovery?.first)
            #expect(discovery.source == "dns llama.test:\(port)" && discovery.members == [memberB] && discovery.error == nil)

            // The DNS server goes away: the last set keeps serving, and status says why it is not fresher.
            dns.stop()
            try await eventually("status says the lookup fails") {
                try await control.status().models.first?.discovery?.first?.error != nil
            }
            let status = try await control.status()
            let error = try #require(status.models.first?.discovery?.first?.error)
            #expect(error.contains("127.0.0.1:\(dns.port)"), "\(error)")
            #expect(StatusTable.render(status).contains("discovers dns llama.test:\(port): 1 member(s); the last lookup failed"))
            let stillServing = try await UpstreamClient.with {
                try await post(url + "/v1/completions", #"{"model":"fake"}"#, client: $0)
            }
            #expect(stillServing.status == 200 && stillServing.header("X-Fleet-Instance") == memberB)
            load.cancel()
            _ = try? await load.value
            #expect(tally.failures.withLock { $0 } == 0, "no request failed while members joined and left")
        }
    }

    @Test func serviceRecordsNameHostsAndPortsAndChangesFollowTheServer() async throws {
        let dns = TestDNSServer(directory: directory)
        let ports = TestPorts.block(2)
        let first = try fake(on: "127.0.0.2", port: ports.lowerBound)
        let second = try fake(on: "127.0.0.2", port: ports.upperBound)
        defer { first.terminate(); second.terminate(); dns.stop() }
        try dns.setHosts(["127.0.0.2 fake-a.test"])
        try await dns.start(services: [("_http._tcp.llama.test", "fake-a.test", ports.lowerBound),
                                       ("_http._tcp.llama.test", "fake-a.test", ports.upperBound)])
        let one = "http://127.0.0.2:\(ports.lowerBound)", two = "http://127.0.0.2:\(ports.upperBound)"
        let source = DiscoverySource(.services(name: "_http._tcp.llama.test"), interval: .seconds(1))
        try await withController(config(source, dns: dns), waitForReady: 2) { url, control in
            try await eventually("both SRV targets ready") { try await members(control) == [one: .ready, two: .ready] }
            let response = try await UpstreamClient.with { try await post(url + "/v1/completions", #"{"model":"fake"}"#, client: $0) }
            #expect(response.status == 200)
            // The server restarts with one record: the other member leaves.
            try await dns.start(services: [("_http._tcp.llama.test", "fake-a.test", ports.upperBound)])
            try await eventually("the first target leaves") { try await members(control) == [two: .ready] }
        }
    }

    @Test func aDiscoveredMemberMayBeAnotherFleetThatWantsItsKey() async throws {
        let dns = TestDNSServer(directory: directory)
        defer { dns.stop() }
        let backKey = "back-fleet-key-dns-1"
        let back = fakeFleetConfig(directory: temporaryDirectory("back")) { $0.keys = KeySet(user: [backKey], admin: []) }
        try await withController(back) { backURL, _ in
            let backPort = try #require(URL(string: backURL)?.port)
            try dns.setHosts(["127.0.0.1 back-fleet.test"])
            try await dns.start()
            let source = DiscoverySource(.addresses(name: "back-fleet.test", port: backPort), interval: .seconds(1), apiKey: backKey)
            try await withController(config(source, dns: dns), waitForReady: 1) { url, control in
                try await eventually("the back fleet discovered and ready") {
                    try await members(control) == ["http://127.0.0.1:\(backPort)": .ready]
                }
                let response = try await UpstreamClient.with { try await post(url + "/v1/completions", #"{"model":"fake"}"#, client: $0) }
                #expect(response.status == 200, "the back fleet took the key the entry gives: \(response.bodyText)")
            }
        }
    }

    @Test func discoverEntriesAreReadAndCheckedInFleetJSON() throws {
        let good = try FleetConfig.decode(Data(#"""
            { "resolver": "10.96.0.10:53", "models": { "m": { "discover": [
              { "dns": "llama.models.svc.cluster.local", "port": 8080 },
              { "srv": "_http._tcp.llama.models.svc.cluster.local", "interval": "30s", "apiKey": "k-12345678" } ] } } }
            """#.utf8), source: "test", baseDirectory: "/tmp")
        #expect(good.resolver == ListenAddress(host: "10.96.0.10", port: 53))
        #expect(good.models[0].discover == [
            DiscoverySource(.addresses(name: "llama.models.svc.cluster.local", port: 8080)),
            DiscoverySource(.services(name: "_http._tcp.llama.models.svc.cluster.local"), interval: .seconds(30), apiKey: "k-12345678"),
        ])
        #expect(good.models[0].replicas == 0 && good.models[0].hasRemoteMembers)
        #expect {
            try FleetConfig.decode(Data(#"{ "resolver": "kube-dns:53", "models": { "m": { "discover": [ { "dns": "x" }, { "srv": "y", "port": 1 }, {} ] } } }"#.utf8),
                                   source: "test", baseDirectory: "/tmp")
        } throws: { error in
            let text = "\(error)"
            return text.contains("\"kube-dns:53\" is not an IP address and port") && text.contains("models.m.discover[0].port") && text.contains("is required with \"dns\"")
                && text.contains("models.m.discover[1].port") && text.contains("models.m.discover[2]")
        }
    }
}
