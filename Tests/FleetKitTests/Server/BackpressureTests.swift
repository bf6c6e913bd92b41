import FleetTestSupport
import Foundation
import NIOCore
import Testing
@testable import FleetConfig
@testable import FleetCore
@testable import FleetUpstream
@testable import FleetClient

/// A client that stops reading in the middle of a long answer: fleet pauses the upstream transfer instead of
/// buffering the answer, holds at most its window for that stream, and completes the answer when the client
/// reads again.
@Suite("backpressure: a client that stops reading", .timeLimit(.minutes(2)))
struct BackpressureTests {
    /// 3,000 tokens of 10 kB each: a 30 MB answer, far more than every buffer on the way holds (the kernel's
    /// socket buffers take up to about 9 MB here: the fake's and fleet's send buffers grow to 4 MB each).
    static let tokens = 3000
    static let tokenBytes = 10_000

    func config() -> FleetConfig {
        fakeFleetConfig(directory: temporaryDirectory(), args: [
            "--fake-tokens", String(Self.tokens), "--fake-token-bytes", String(Self.tokenBytes), "--fake-token-delay", "0",
        ])
    }

    /// Opens the stream and takes its first chunk; the test's own client holds a small window, so once the test
    /// stops taking, its socket fills, then fleet's window, then the fake's socket.
    func openStalledStream(_ url: String, client: UpstreamClient) async throws -> (UpstreamBody.Iterator, ByteBuffer) {
        var request = UpstreamRequest(method: "POST", url: url + "/v1/completions",
                                      headers: [("Content-Type", "application/json")],
                                      body: ByteBuffer(string: #"{"model":"fake","stream":true}"#))
        request.window = 16 * 1024
        let stream = try await client.execute(request)
        #expect(stream.status == 200)
        var iterator = stream.body.makeAsyncIterator()
        let first = try #require(try await iterator.next())
        return (iterator, first)
    }

    /// The fake's streamed byte count once it stops moving (its sends block): sampled until two readings half a
    /// second apart agree.
    func stalledSends(_ fake: String, client: UpstreamClient) async throws -> Int {
        var last = -1
        for _ in 0..<60 {
            let sent = try await fakeStats(fake, client: client)["streamedBytes"] as? Int ?? 0
            if sent == last { return sent }
            last = sent
            try await Task.sleep(for: .milliseconds(500))
        }
        Issue.record("the fake's sends never blocked: \(last) bytes sent")
        return last
    }

    /// The controller's transfer counts once the stalled stream's transfer is paused and what it holds for it is
    /// down to `bound`, or the last reading after 10 s. The fake's sends can block (its socket full) while the
    /// controller's event loop has not yet taken what the relay last put in the connection's outbox (up to
    /// `AnswerOutbox.maxWaiting` more), which a loaded machine can delay; a controller that buffered the answer
    /// would never come down.
    func settledUpstream(_ control: ControlClient, atMost bound: Int) async throws -> UpstreamCounts {
        var last = try #require(try await control.status().upstream)
        let deadline = ContinuousClock.now + .seconds(10)
        while !(last.paused == 1 && last.bufferedBytes <= bound), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            last = try #require(try await control.status().upstream)
        }
        return last
    }

    @Test func aStalledReaderPausesTheUpstreamHoldsAtMostTheWindowAndResumesByteExact() async throws {
        try await withController(config()) { url, control in
            let fake = "http://127.0.0.1:\(try #require(try await control.status().instances.first?.port))"
            try await UpstreamClient.with { client in
                var (iterator, received) = try await openStalledStream(url, client: client)
                let sent = try await stalledSends(fake, client: client)
                #expect(sent < Self.tokens * Self.tokenBytes / 2, "the fake's sends block long before its answer is out")

                let bound = UpstreamBody.defaultWindow + 16 * 1024
                let upstream = try await settledUpstream(control, atMost: bound)
                #expect(upstream.paused == 1, "the one stream whose client stopped reading is paused")
                #expect(upstream.bufferedBytes <= bound,
                        "fleet holds at most its window (and one chunk) for the stream: \(upstream.bufferedBytes) bytes")

                // The client reads again: the answer completes, every event whole and in order.
                while var chunk = try await iterator.next() { received.writeBuffer(&chunk) }
                let events = String(buffer: received).split(separator: "\n\n", omittingEmptySubsequences: false)
                #expect(events.count == Self.tokens + 3 && events.last == "", "every token, the last chunk, [DONE]: \(events.count - 1) events")
                let broken = events.prefix(Self.tokens).enumerated().filter { index, event in
                    let piece = "tok\(index) "
                    guard event.hasPrefix("data: {"), let start = event.firstRange(of: #""text":""# + piece) else { return true }
                    return event[start.upperBound...].prefix { $0 == "x" }.count + piece.utf8.count != Self.tokenBytes
                }
                #expect(broken.isEmpty, "every token event whole and in order; first broken: \(broken.first.map { "\($0.offset)" } ?? "-")")
                #expect(events.dropLast().last == "data: [DONE]")
                let after = try #require(try await control.status().upstream)
                #expect(after.paused == 0 && after.bufferedBytes == 0)
            }
        }
    }

    @Test func aClientThatLeavesWhilePausedFreesTheSlotAndTheTransfer() async throws {
        try await withController(config()) { url, control in
            let fake = "http://127.0.0.1:\(try #require(try await control.status().instances.first?.port))"
            try await UpstreamClient.with { client in
                do {
                    let (iterator, _) = try await openStalledStream(url, client: client)
                    _ = try await stalledSends(fake, client: client)
                    #expect(try await control.status().upstream?.paused == 1)
                    withExtendedLifetime(iterator) {}
                }  // the stream is dropped here: the test's client closes its connection
                try await eventually("the fake sees its client go") {
                    try await fakeStats(fake, client: client)["disconnected"] as? Int == 1
                }
                try await eventually("nothing paused or held, the slot free") {
                    let status = try await control.status()
                    return status.upstream?.paused == 0 && status.upstream?.bufferedBytes == 0
                        && status.instances.first?.traffic?.inFlight == 0
                }
            }
        }
    }
}
