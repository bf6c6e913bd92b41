import FleetTestSupport
import Foundation
import Testing
@testable import FleetConfig
@testable import FleetUpstream
@testable import FleetClient
@testable import FleetCore

/// Connections that send nothing, half a request or a lie, or simply too many of them, cannot take the
/// controller's listener away from everyone else.
@Suite("connection limits on the listener", .timeLimit(.minutes(2)))
struct ConnectionLimitsTests {
    let directory = temporaryDirectory()

    func config(_ configure: (inout FleetConfig) -> Void = { _ in }) -> FleetConfig {
        fakeFleetConfig(directory: directory) {
            $0.gateway.headerTimeout = .seconds(1)
            $0.gateway.bodyTimeout = .seconds(1)
            $0.gateway.keepAliveTimeout = .seconds(1)
            configure(&$0)
        }
    }

    @Test func silentHalfSentAndIdleConnectionsAreClosed() async throws {
        let config = config()
        try await withController(config) { _, control in
            let port = config.listen.port
            let silent = try RawConnection(port: port)
            let halfHead = try RawConnection(port: port)
            halfHead.send("GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            let halfBody = try RawConnection(port: port)
            halfBody.send("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"model\":")
            let idle = try RawConnection(port: port)
            idle.send("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            #expect(try await idle.waitFor("200 OK", timeout: .seconds(5)), "answered, then kept alive")
            for (name, connection) in [("silent", silent), ("half a head", halfHead), ("half a body", halfBody),
                                       ("idle after an answer", idle)] {
                #expect(try await connection.waitUntilClosed(timeout: .seconds(10)), "\(name): closed by the server")
            }
            #expect(!halfHead.receivedText.contains("200 OK"))
            let counts = try #require(try await control.status().connections)
            #expect(counts.timedOut >= 4, "status counts the connections closed for stalling or idling: \(counts)")
        }
    }

    @Test func aDeclaredBodyBeyondTheLimitIsRefusedAtOnce() async throws {
        let config = config { $0.gateway.maxBodySize = 1024; $0.gateway.bodyTimeout = .seconds(60) }
        try await withController(config) { _, _ in
            let liar = try RawConnection(port: config.listen.port)
            let sent = ContinuousClock.now
            liar.send("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n{}")
            #expect(try await liar.waitFor("request_too_large", timeout: .seconds(5)))
            #expect(liar.receivedText.hasPrefix("HTTP/1.1 413"))
            #expect(try await liar.waitUntilClosed(timeout: .seconds(5)), "the body is never read: the connection closes")
            #expect(ContinuousClock.now - sent < .seconds(5), "at once, not after the body timeout (60 s here)")
        }
    }

    @Test func pastTheCapTheLongestIdleConnectionsAreClosedAndTheFleetStillAnswers() async throws {
        let config = config {
            $0.gateway.maxConnections = 16
            $0.gateway.headerTimeout = .seconds(60)
            $0.gateway.keepAliveTimeout = .seconds(60)
        }
        try await withController(config) { url, _ in
            var idle: [RawConnection] = []
            for _ in 0..<48 {
                idle.append(try RawConnection(port: config.listen.port))
                try await Task.sleep(for: .milliseconds(5))
            }
            let codes = try await UpstreamClient.with { client in
                [try await client.fetch(UpstreamRequest(url: url + "/health")).status,
                 try await client.fetch(UpstreamRequest(url: url + "/status")).status,
                 try await post(url + "/v1/completions", #"{"model":"fake"}"#, client: client).status]
            }
            #expect(codes == [200, 200, 200])
            #expect(try await idle[0].waitUntilClosed(timeout: .seconds(5)), "the oldest idle connection made room")
            // The server closes as it accepts; the last closes reach the client a moment later (longer when other
            // tests keep the process's shared event loops busy).
            do {
                try await eventually(timeout: .seconds(20), "at most maxConnections stay open") {
                    idle.filter { !$0.drain() }.count <= 16
                }
            } catch {
                let open = idle.enumerated().filter { !$0.element.drain() }.map(\.offset)
                Issue.record("open from the client's side: \(open); the server's count: \(String(describing: try? await ControlClient(baseURL: url).status().connections))")
            }
            #expect(!idle[47].drain(), "the newest idle connection is kept")
            let counts = try await ControlClient(baseURL: url).status().connections
            #expect((counts?.evicted ?? 0) >= 32 && (counts?.open ?? 99) <= 16, "\(String(describing: counts))")
            let metrics = try await UpstreamClient.with { try await $0.fetch(UpstreamRequest(url: url + "/metrics")) }.bodyText
            #expect(metrics.contains("fleet_connections_open ") && metrics.contains("fleet_connections_evicted "))
        }
    }
}
