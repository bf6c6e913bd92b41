import FleetTestSupport
import Foundation
import Testing
@testable import FleetUpstream
@testable import FleetCore
@testable import FleetConfig
@testable import FleetClient

/// A client that leaves takes its work with it: out of the queue at once, and llama-server stops too.
@Suite("cancellation when the client leaves", .timeLimit(.minutes(2)))
struct CancellationTests {
    let directory = temporaryDirectory()

    @Test func aClientThatLeavesWhileQueuedLeavesTheQueueAndIsNeverRun() async throws {
        let config = fakeFleetConfig(directory: directory, args: ["--fake-tokens", "300", "--fake-token-delay", "0.1"]) {
            $0.models[0].parallel = 1
        }
        try await withController(config) { url, control in
            try await UpstreamClient.with { client in
                let busy = try await client.execute(UpstreamRequest(
                    method: "POST", url: url + "/v1/completions", body: Array(#"{"model":"fake","stream":true}"#.utf8)))
                let queued = try RawConnection(port: config.listen.port)
                let body = #"{"model":"fake"}"#
                queued.send("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
                try await eventually("queued") { try await control.status().models[0].queueDepth == 1 }
                queued.hangUp()
                try await eventually(timeout: .seconds(2), "out of the queue within a second or two") {
                    try await control.status().models[0].queueDepth == 0
                }
                // The slot frees: had the request stayed queued, it would run now.
                busy.cancel()
                try await eventually("the slot is free") { try await control.status().instances[0].traffic?.inFlight == 0 }
                let port = try #require(try await control.status().instances[0].port)
                try await Task.sleep(for: .milliseconds(500))
                let stats = try await fakeStats("http://127.0.0.1:\(port)", client: client)
                #expect(stats["requests"] as? Int == 1, "the abandoned request never reached the instance")
            }
        }
    }

    @Test(arguments: [false, true])
    func aClientThatLeavesDuringPromptProcessingStopsTheInstance(streaming: Bool) async throws {
        let config = fakeFleetConfig(directory: directory, args: ["--fake-prompt-delay", "20"])
        try await withController(config) { url, control in
            let port = try #require(try await control.status().instances[0].port)
            let client = try RawConnection(port: config.listen.port)
            let body = #"{"model":"fake","stream":\#(streaming)}"#
            client.send("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
            try await eventually("in flight") { try await control.status().instances[0].traffic?.inFlight == 1 }
            client.hangUp()
            try await UpstreamClient.with { upstream in
                try await eventually(timeout: .seconds(3), "llama-server sees its client go within a second or two") {
                    try await fakeStats("http://127.0.0.1:\(port)", client: upstream)["abandoned"] as? Int == 1
                }
            }
            try await eventually(timeout: .seconds(3), "the slot is free again") {
                try await control.status().instances[0].traffic?.inFlight == 0
            }
        }
    }

    @Test func aReaderThatStallsThenLeavesLosesNothingAndLeaksNothing() async throws {
        let config = fakeFleetConfig(directory: directory, args: ["--fake-tokens", "3000", "--fake-token-delay", "0.001"])
        try await withController(config) { _, control in
            let port = try #require(try await control.status().instances[0].port)
            let body = #"{"model":"fake","stream":true}"#
            let request = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
            // A reader that stalls, then reads on: the whole answer arrives, in order.
            let patient = try RawConnection(port: config.listen.port)
            patient.send(request)
            try await Task.sleep(for: .seconds(2))
            #expect(try await patient.waitFor("data: [DONE]", timeout: .seconds(20)))
            let text = patient.receivedText
            #expect(text.contains("tok0 ") && text.contains("tok2999 ") && !text.contains("upstream_cut"))
            // A reader that stalls, then leaves: the instance sees it go, the slot and the lease come back.
            let quitter = try RawConnection(port: config.listen.port)
            quitter.send(request)
            try await eventually("streaming") { try await control.status().instances[0].traffic?.inFlight == 1 }
            try await Task.sleep(for: .milliseconds(500))
            quitter.hangUp()
            try await eventually("the slot is free again") { try await control.status().instances[0].traffic?.inFlight == 0 }
            try await UpstreamClient.with { client in
                try await eventually("the instance saw its client go") {
                    try await fakeStats("http://127.0.0.1:\(port)", client: client)["disconnected"] as? Int == 1
                }
            }
        }
    }
}
