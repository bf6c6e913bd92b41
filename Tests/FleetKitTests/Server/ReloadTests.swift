import FleetTestSupport
import Foundation
import NIOCore
import Testing
@testable import FleetConfig
@testable import FleetCore
@testable import FleetUpstream
@testable import FleetClient

/// `fleet reload`: only the difference between the running fleet and fleet.json moves.
@Suite("reload by diff over fake servers", .timeLimit(.minutes(2)))
struct ReloadTests {
    let directory = temporaryDirectory()
    let listen = TestPorts.block(1).lowerBound
    let ports = TestPorts.block(20)

    /// Writes fleet.json with these models (JSON object members) and returns its configuration.
    @discardableResult
    func write(_ models: String, extra: String = "") throws -> FleetConfig {
        _ = fakeGGUF(in: directory)
        let file = directory + "/fleet.json"
        try """
            {
              "listen": "127.0.0.1:\(listen)", "portRange": "\(ports.lowerBound)-\(ports.upperBound)",
              "llamaServer": "\(Products.fakeServer)", "stopTimeout": "2s", \(extra)
              "healthCheck": { "interval": "200ms" },
              "models": { \(models) }
            }
            """.write(toFile: file, atomically: true, encoding: .utf8)
        return try FleetConfig.load(file: file)
    }

    func pids(_ status: FleetStatus) -> [String: Int32] {
        Dictionary(uniqueKeysWithValues: status.instances.compactMap { instance in instance.pid.map { (instance.id, $0) } })
    }

    @Test func onlyTheDifferenceMoves() async throws {
        let config = try write("""
            "a": { "path": "model.gguf" },
            "b": { "path": "model.gguf", "replicas": 2 },
            "c": { "path": "model.gguf", "args": ["--fake-tokens", "5"] },
            "d": { "path": "model.gguf" }
            """)
        try await withController(config) { url, control in
            let before = pids(try await control.status())
            try write("""
                "a": { "path": "model.gguf", "aliases": ["alpha"], "policy": "prefixAware", "prefixRouting": { "maxImbalance": 0 } },
                "b": { "path": "model.gguf", "replicas": 1 },
                "c": { "path": "model.gguf", "args": ["--fake-tokens", "6"] },
                "e": { "path": "model.gguf" }
                """, extra: #""gateway": { "retries": 1 },"#)
            let result = try await control.reload()
            #expect(result.errors.isEmpty)
            let report = try #require(result.applied)
            #expect(report.added == ["e"] && report.removed == ["d"] && report.restarted == ["c"])
            #expect(report.scaled == ["b"] && report.reconfigured == ["a"])
            #expect(result.needsControllerRestart == ["gateway"])

            try await eventually("e ready") { try await control.status().instances.contains { $0.id == "e/0" && $0.state == .ready } }
            let after = pids(try await control.status())
            #expect(after["a/0"] == before["a/0"], "a changed routing only: same process")
            #expect(try await control.status().models.first { $0.name == "a" }?.policy == "prefixAware", "the new policy applies")
            #expect(after["b/0"] == before["b/0"] && after["b/1"] == nil, "b scaled down by retiring b/1")
            #expect(after["c/0"] != nil && after["c/0"] != before["c/0"], "c's command changed: hot-swapped")
            #expect(after["d/0"] == nil && !ProcessProbe.isAlive(before["d/0"]!), "d removed and stopped")
            #expect(!ProcessProbe.isAlive(before["b/1"]!))

            let codes = try await UpstreamClient.with { client in
                var codes: [Int] = []
                for model in ["alpha", "e", "d"] {
                    codes.append(try await post(url + "/v1/completions", #"{"model":"\#(model)"}"#, client: client).status)
                }
                return codes
            }
            #expect(codes == [200, 200, 404], "the new alias and model route; the removed model is gone")
        }
    }

    @Test func scalingUpAddsReplicasAndKeepsTheRunningOne() async throws {
        let config = try write(#""b": { "path": "model.gguf" }"#)
        try await withController(config) { _, control in
            let before = pids(try await control.status())
            try write(#""b": { "path": "model.gguf", "replicas": 3 }"#)
            let result = try await control.reload()
            #expect(result.applied?.scaled == ["b"])
            try await eventually("3 ready") { try await control.status().readyCount == 3 }
            #expect(pids(try await control.status())["b/0"] == before["b/0"])
        }
    }

    @Test func anInvalidFileChangesNothingAndSaysWhy() async throws {
        let config = try write(#""a": { "path": "model.gguf" }"#)
        try await withController(config) { _, control in
            let before = pids(try await control.status())
            _ = try? write(#""a": { "path": "model.gguf", "replica": 2 }, "z": { "path": "missing.gguf" }"#)  // written, then refused
            let result = try await control.reload()
            #expect(result.applied == nil)
            #expect(result.errors.contains { $0.contains("models.a.replica: unknown key") })
            #expect(result.errors.contains { $0.contains("missing.gguf does not exist") })
            #expect(pids(try await control.status()) == before)
        }
    }
}

extension ReloadTests {
    @Test func watchReloadsWhenTheFileChanges() async throws {
        let config = try write(#""w": { "path": "model.gguf" }"#, extra: #""watch": true,"#)
        try await withController(config) { _, control in
            let before = pids(try await control.status())
            try write(#""w": { "path": "model.gguf", "replicas": 2 }"#, extra: #""watch": true,"#)
            try await eventually("the second replica, started by the watcher") { try await control.status().readyCount == 2 }
            #expect(pids(try await control.status())["w/0"] == before["w/0"])
        }
    }
}

/// A reload never cuts what it promised to drain.
extension ReloadTests {
    func stream(_ url: String, _ model: String, client: UpstreamClient) async throws -> String {
        let stream = try await client.execute(UpstreamRequest(
            method: "POST", url: url + "/v1/completions", body: Array(#"{"model":"\#(model)","stream":true}"#.utf8),
            totalTimeout: .seconds(60)))
        var text = "\(stream.status) "
        for try await chunk in stream.body { text += String(buffer: chunk) }
        return text
    }

    @Test func aRemovedModelFinishesWhatItHadQueuedAndInFlightThenStops() async throws {
        let config = try write("""
            "a": { "path": "model.gguf" },
            "b": { "path": "model.gguf", "parallel": 1, "args": ["--fake-tokens", "60", "--fake-token-delay", "0.05"] }
            """)
        try await withController(config) { url, control in
            let bPid = try #require(try await control.status().instances.first { $0.model == "b" }?.pid)
            try await UpstreamClient.with { client in
                async let first = stream(url, "b", client: client)
                async let second = stream(url, "b", client: client)
                async let third = stream(url, "b", client: client)
                // 3 s answers, one slot: for several seconds one is in flight and the others wait in the queue.
                try await eventually("one in flight, the others queued") {
                    (try await control.status().models.first { $0.name == "b" }?.queueDepth ?? 0) >= 1
                }
                try write(#""a": { "path": "model.gguf" }"#)
                let result = try await control.reload()
                #expect(result.applied?.removed == ["b"])
                for text in try await [first, second, third] {
                    #expect(text.hasPrefix("200 ") && text.hasSuffix("data: [DONE]\n\n"), "every request finished whole: \(text.suffix(200))")
                }
                #expect(!ProcessProbe.isAlive(bPid), "then b stopped")
                #expect(try await post(url + "/v1/completions", #"{"model":"b"}"#, client: client).status == 404)
            }
        }
    }

    @Test func aModelAddedBackWhileItsRemovalDrainsRunsAgain() async throws {
        let config = try write("""
            "a": { "path": "model.gguf" },
            "b": { "path": "model.gguf", "parallel": 1, "args": ["--fake-tokens", "100", "--fake-token-delay", "0.05"] }
            """)
        try await withController(config) { url, control in
            try await UpstreamClient.with { client in
                async let long = stream(url, "b", client: client)  // 5 s: the removal drains for that long
                try await eventually("b busy") { try await control.status().instances.contains { $0.model == "b" && $0.traffic?.inFlight == 1 } }
                try write(#""a": { "path": "model.gguf" }"#)
                async let removal = control.reload()
                // The removal is under way once b is no longer routed; its drain lasts as long as the stream.
                try await eventually("b no longer routed") {
                    try await !client.fetch(UpstreamRequest(url: url + "/v1/models")).bodyText.contains(#""id":"b""#)
                }
                // Asked while the removal drains: applied after it, onto the fleet as the removal left it.
                try write("""
                    "a": { "path": "model.gguf" },
                    "b": { "path": "model.gguf", "parallel": 1, "args": ["--fake-tokens", "100", "--fake-token-delay", "0.05"] }
                    """)
                let addition = try await control.reload()
                let removed = try await removal
                #expect(removed.applied?.removed == ["b"] && addition.applied?.added == ["b"], "\(removed) \(addition)")
                #expect(try await long.hasSuffix("data: [DONE]\n\n"))
                try await eventually("b runs again") {
                    try await control.status().instances.contains { $0.model == "b" && $0.state == .ready }
                }
                let answer = try await post(url + "/v1/completions", #"{"model":"b","max_tokens":2}"#, client: client)
                #expect(answer.status == 200, "\(answer.bodyText)")
            }
        }
    }

    @Test func anEndpointRemovedByReloadLeavesRotationAfterItsRequestsFinish() async throws {
        let (endpoint, endpointURL) = try await startFakeEndpoint(["--fake-tokens", "60", "--fake-token-delay", "0.05", "--parallel", "4"])
        defer { endpoint.terminate() }
        let config = try write(#""a": { "path": "model.gguf", "parallel": 4, "endpoints": ["\#(endpointURL)"] }"#)
        try await withController(config, waitForReady: 2) { url, control in  // the replica and the endpoint
            try await eventually("the endpoint in rotation") {
                try await control.status().instances.contains { !$0.managed && $0.state == .ready }
            }
            try await UpstreamClient.with { client in
                async let first = stream(url, "a", client: client)
                async let second = stream(url, "a", client: client)
                try await eventually("a stream on the endpoint") {
                    try await control.status().instances.contains { !$0.managed && ($0.traffic?.inFlight ?? 0) >= 1 }
                }
                try write(#""a": { "path": "model.gguf", "parallel": 4 }"#)
                #expect(try await control.reload().applied?.reconfigured == ["a"])
                try await eventually("the endpoint is gone from status") {
                    try await !control.status().instances.contains { !$0.managed }
                }
                for text in try await [first, second] {
                    #expect(text.hasPrefix("200 ") && text.hasSuffix("data: [DONE]\n\n"), "in flight, finished whole: \(text.suffix(200))")
                }
                let before = try await fakeStats(endpointURL, client: client)["requests"] as? Int
                for _ in 0..<4 { #expect(try await post(url + "/v1/completions", #"{"model":"a"}"#, client: client).status == 200) }
                #expect(try await fakeStats(endpointURL, client: client)["requests"] as? Int == before, "no new request went to it")
            }
        }
    }
}
