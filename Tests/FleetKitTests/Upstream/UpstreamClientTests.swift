import Foundation
import FleetTestSupport
import Testing
@testable import FleetUpstream
@testable import FleetCore

@Suite("upstream client (libcurl)", .timeLimit(.minutes(1)))
struct UpstreamClientTests {
    @Test func theLoopLingersUnderManyStreamsAndOnlyBrieflyWhileAPlainAnswerIsInFlight() {
        #expect(CurlEventLoop.linger(relayed: 3, transfers: 64, unbatched: 0, commandsQueued: false) == .streams)
        #expect(CurlEventLoop.linger(relayed: 3, transfers: 64, unbatched: 1, commandsQueued: false) == .brief,
                "a plain answer (or a probe) is in flight")
        #expect(CurlEventLoop.linger(relayed: 0, transfers: 64, unbatched: 0, commandsQueued: false) == nil, "nothing was relayed")
        #expect(CurlEventLoop.linger(relayed: 3, transfers: CurlEventLoop.lingerFrom - 1, unbatched: 0, commandsQueued: false) == nil,
                "too few transfers: each token goes at once")
        #expect(CurlEventLoop.linger(relayed: 3, transfers: 64, unbatched: 0, commandsQueued: true) == nil, "a command waits")
        #expect(CurlEventLoop.linger(relayed: 3, transfers: 64, unbatched: 1, commandsQueued: true) == nil, "a command waits")
        #expect(CurlEventLoop.lingerGoesOn(transfers: 64, unbatched: 0), "streams only: the linger goes on past commands")
        #expect(!CurlEventLoop.lingerGoesOn(transfers: 64, unbatched: 1), "a plain answer came: it ends")
        #expect(!CurlEventLoop.lingerGoesOn(transfers: CurlEventLoop.lingerFrom - 1, unbatched: 0), "too few streams left: it ends")
    }

    @Test func fetchesFromAServerAndReportsStatusAndHeaders() async throws {
        // Tokens 500 ms apart: each is written alone, so the body arrives in pieces (what waits when the
        // consumer asks is handed over as one, so a consumer held back long gets several at once; under the whole
        // suite's load a consumer was once held back 600 ms, so the gaps leave it 1.5 s).
        let config = fakeFleetConfig(directory: temporaryDirectory(), args: ["--fake-token-delay", "0.5", "--fake-tokens", "3"])
        try await withFakeSupervisor(config) { supervisor, _ in
            try await eventually("ready") { await supervisor.status("fake/0")?.state == .ready }
            let port = try #require(await supervisor.status("fake/0")?.port)
            try await UpstreamClient.with { client in
                let response = try await client.fetch(UpstreamRequest(method: "POST", url: "http://127.0.0.1:\(port)/v1/completions",
                                                                      headers: [("Content-Type", "application/json")],
                                                                      body: Array(#"{"max_tokens":3}"#.utf8)))
                #expect(response.status == 200)
                #expect(response.header("content-type") == "application/json")
                #expect(response.bodyText.contains("tok0 tok1 tok2"))
                var chunks = 0
                let stream = try await client.execute(UpstreamRequest(method: "POST", url: "http://127.0.0.1:\(port)/v1/completions",
                                                                      body: Array(#"{"stream":true}"#.utf8)))
                #expect(stream.status == 200 && stream.header("content-type") == "text/event-stream")
                for try await _ in stream.body { chunks += 1 }
                #expect(chunks >= 2, "a stream arrives in pieces, as they are written")
            }
        }
    }

    @Test func aHealthProbeThatTimesOutIsBusyWhileTheInstancesAnswersArriveAndDownWhenNothingArrives() async throws {
        #expect(HealthProbe.origin(of: "http://127.0.0.1:8080/health") == "http://127.0.0.1:8080/")
        #expect(HealthProbe.origin(of: "http://host:80/v1/health") == "http://host:80/", "a port's prefix is not another port's")
        #expect(HealthProbe.origin(of: "not a url") == nil)
        // A stream of tokens 20 ms apart; /health made to take 3 s, longer than the probe waits.
        let (server, url) = try await startFakeEndpoint(["--fake-tokens", "150", "--fake-token-delay", "0.02"])
        defer { server.terminate() }
        try await UpstreamClient.with { client in
            let probe = HealthProbe(client: client, url: url + "/health", timeout: .milliseconds(400))
            #expect(await probe.check() == .ready)
            _ = try await client.fetch(UpstreamRequest(method: "POST", url: url + "/fake/slow-health?seconds=3"))
            guard case .down(let why) = await probe.check() else {
                Issue.record("a probe that times out with nothing in flight is down")
                return
            }
            #expect(why.contains("timed out"), "\(why)")
            let stream = try await client.execute(UpstreamRequest(method: "POST", url: url + "/v1/completions",
                                                                  body: Array(#"{"stream":true}"#.utf8)))
            var chunks = stream.body.makeAsyncIterator()
            _ = try await chunks.next()
            // Reads the stream on while the probe waits, as the gateway would for its client.
            let reader = Task { while try await chunks.next() != nil {} }
            defer { reader.cancel() }
            let busy = await probe.check()
            #expect(!(await client.received(from: "http://127.0.0.1:1/", since: .now - .seconds(60))),
                    "another origin's transfers are not this one's")
            guard case .busy(let detail) = busy else {
                Issue.record("a probe that times out while the answers arrive is busy, not \(busy)")
                return
            }
            #expect(busy.passes && detail.contains("answers kept arriving"), "\(detail)")
        }
    }

    @Test func refusedConnectionIsAConnectFailure() async throws {
        let port = TestPorts.block(1).lowerBound
        await #expect {
            try await UpstreamClient.with { try await $0.fetch(UpstreamRequest(url: "http://127.0.0.1:\(port)/")) }
        } throws: { ($0 as? UpstreamError)?.kind == .connectFailed }
    }
}
