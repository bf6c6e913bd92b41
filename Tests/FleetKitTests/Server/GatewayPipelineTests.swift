import FleetTestSupport
import Foundation
import Testing
@testable import FleetConfig
@testable import FleetClient

/// The gateway's requests beside the controller's own routes on one connection: answered in order, closing when
/// asked, refusing a chunked body that is too large. (A graceful shutdown with a stream under way: ControllerTests.)
@Suite("gateway requests on a shared connection", .timeLimit(.minutes(2)))
struct GatewayPipelineTests {
    let directory = temporaryDirectory()

    private func completion(_ stream: Bool, headers: String = "") -> String {
        let body = "{\"model\":\"fake\",\"prompt\":\"x\",\"max_tokens\":3,\"stream\":\(stream)}"
        return "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\(headers)"
            + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    /// Whether each of `markers` is found after the one before it.
    private func inOrder(_ text: String, _ markers: [String]) -> Bool {
        var from = text.startIndex
        for marker in markers {
            guard let found = text.range(of: marker, range: from..<text.endIndex) else { return false }
            from = found.upperBound
        }
        return true
    }

    @Test func pipelinedRequestsForBothSidesAreAnsweredInTheOrderTheyCame() async throws {
        let config = fakeFleetConfig(directory: directory)
        try await withController(config) { _, _ in
            let connection = try RawConnection(port: config.listen.port)
            // Sent in one write: a gateway answer, Hummingbird's, a gateway stream, Hummingbird's, a gateway answer.
            connection.send(completion(false) + "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + completion(true)
                            + "GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + completion(false))
            let markers = ["\"text_completion\"", "\"ready\"", "data: [DONE]", "\"object\":\"list\"", "\"text_completion\""]
            try await eventually(timeout: .seconds(20), "five answers") {
                connection.drain()
                return connection.receivedText.components(separatedBy: "HTTP/1.1 200 OK").count == 6
                    && inOrder(connection.receivedText, markers)
            }
            #expect(inOrder(connection.receivedText, ["HTTP/1.1 200 OK"] + markers))
            #expect(!connection.drain(), "the connection stays open for the next request")
            connection.send(completion(false))
            try await eventually(timeout: .seconds(20), "a sixth answer") {
                connection.drain()
                return connection.receivedText.components(separatedBy: "HTTP/1.1 200 OK").count == 7
            }

            // Two gateway requests back to back (the second waits for the first), then one of Hummingbird's.
            let second = try RawConnection(port: config.listen.port)
            second.send(completion(true) + completion(false) + "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            try await eventually(timeout: .seconds(20), "three answers") {
                second.drain()
                return inOrder(second.receivedText, ["data: [DONE]", "\"text_completion\"", "\"ready\""])
            }
            #expect(second.receivedText.components(separatedBy: "HTTP/1.1 200 OK").count == 4)
        }
    }

    @Test func aGatewayRequestThatAsksToCloseIsAnsweredThenClosed() async throws {
        let config = fakeFleetConfig(directory: directory)
        try await withController(config) { _, _ in
            let connection = try RawConnection(port: config.listen.port)
            connection.send(completion(false, headers: "Connection: close\r\n"))
            #expect(try await connection.waitUntilClosed(timeout: .seconds(10)))
            #expect(connection.receivedText.hasPrefix("HTTP/1.1 200 OK"))
            #expect(connection.receivedText.contains("\"text_completion\""))
            #expect(connection.receivedText.contains("Date: "), "the same headers Hummingbird's answers carry")
            #expect(connection.receivedText.contains("Server: fleet"))
        }
    }

    @Test func aChunkedBodyPastTheLimitIsRefused() async throws {
        let config = fakeFleetConfig(directory: directory) { $0.gateway.maxBodySize = 1024 }
        try await withController(config) { _, _ in
            let connection = try RawConnection(port: config.listen.port)
            let chunk = String(repeating: "x", count: 2048)
            connection.send("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                            + "Transfer-Encoding: chunked\r\n\r\n800\r\n\(chunk)\r\n0\r\n\r\n")
            #expect(try await connection.waitFor("request_too_large", timeout: .seconds(10)))
            #expect(connection.receivedText.hasPrefix("HTTP/1.1 413"))
            #expect(try await connection.waitUntilClosed(timeout: .seconds(10)))
        }
    }
}
