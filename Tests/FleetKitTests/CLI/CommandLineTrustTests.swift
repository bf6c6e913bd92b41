import Foundation
import FleetTestSupport
import Testing
@testable import FleetClient
@testable import FleetUpstream
@testable import FleetCore

/// The `fleet` executable where secrets, signals and listen addresses are concerned.
@Suite("fleet command line: keys, signals, exposure", .timeLimit(.minutes(3)))
struct CommandLineTrustTests {
    let directory = temporaryDirectory()
    let listenPort = TestPorts.block(1).lowerBound

    func writeConfig(listen: String? = nil, model: String = #""path": "model.gguf""#) throws -> String {
        _ = fakeGGUF(in: directory)
        let range = TestPorts.block()
        let json = """
            {
              "listen": "\(listen ?? "127.0.0.1:\(listenPort)")",
              "portRange": "\(range.lowerBound)-\(range.upperBound)",
              "llamaServer": "\(Products.fakeServer)",
              "healthCheck": { "interval": "200ms", "startupTimeout": "20s" },
              "models": { "fake": { \(model), "args": ["--fake-loading-delay", "0.2"] } }
            }
            """
        let path = directory + "/fleet.json"
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func keysInTheEnvironmentNeverReachInstancesAndDetachSettlesWithEndpoints() async throws {
        let (endpoint, endpointURL) = try await startFakeEndpoint([])
        defer { endpoint.terminate() }
        let config = try writeConfig(model: #""path": "model.gguf", "endpoints": ["\#(endpointURL)"]"#)
        let secrets = ["FLEET_API_KEYS": "user-key-1234", "FLEET_ADMIN_KEYS": "admin-key-1234", "FLEET_API_KEY": "admin-key-1234"]
        let up = try await runCommand(Products.fleet, ["up", "--detach", "--config", config], environment: secrets)
        defer { _ = try? runCommandBlocking(Products.fleet, ["down", "--config", config], environment: secrets) }
        #expect(up.code == 0, "an endpoint in the pool does not keep --detach from settling: \(up.output)")
        #expect(up.output.contains("fleet is ready: 1/1 instances"), "\(up.output)")

        let status = try await ControlClient(baseURL: "http://127.0.0.1:\(listenPort)", apiKey: "admin-key-1234").status()
        let port = try #require(status.instances.first { $0.managed }?.port)
        let names = try await UpstreamClient.with { client in
            try await client.fetch(UpstreamRequest(url: "http://127.0.0.1:\(port)/fake/env")).bodyText
        }
        #expect(names.contains("PATH"), "the instance does get the rest of the environment: \(names)")
        for secret in secrets.keys {
            #expect(!names.contains("\"\(secret)\""), "\(secret) must not reach an instance: \(names)")
        }
    }

    @Test func sighupReloadsFleetJSON() async throws {
        let config = try writeConfig()
        #expect(try await runCommand(Products.fleet, ["up", "--detach", "--config", config]).code == 0)
        defer { _ = try? runCommandBlocking(Products.fleet, ["down", "--config", config]) }
        let control = ControlClient(baseURL: "http://127.0.0.1:\(listenPort)")
        let pid = try await control.status().controller.pid
        _ = try writeConfig(model: #""path": "model.gguf", "aliases": ["after-sighup"]"#)
        kill(pid, SIGHUP)
        try await eventually("the alias routes") {
            try await control.status().models.first?.aliases == ["after-sighup"]
        }
        #expect(ProcessProbe.isAlive(pid), "SIGHUP reloads; it does not stop the controller")
    }

    @Test func aListenAddressOtherMachinesReachNeedsKeysOrTheFlag() async throws {
        let config = try writeConfig(listen: "0.0.0.0:\(listenPort)")
        let refused = try await runCommand(Products.fleet, ["up", "--detach", "--config", config])
        #expect(refused.code != 0)
        #expect(refused.output.contains("no apiKeys are set") && refused.output.contains("--allow-unauthenticated"),
                "\(refused.output)")
        #expect(processes(matching: directory + "/model.gguf").isEmpty, "nothing was started")

        let allowed = try await runCommand(Products.fleet, ["up", "--detach", "--allow-unauthenticated", "--config", config])
        defer { _ = try? runCommandBlocking(Products.fleet, ["down", "--config", config]) }
        #expect(allowed.code == 0, "\(allowed.output)")
        #expect(try await ControlClient(baseURL: "http://127.0.0.1:\(listenPort)").status().readyCount == 1)
    }

    @Test func sigtermLetsTheAnswersInFlightFinishBeforeStopping() async throws {
        let config = try writeConfig(model: #""path": "model.gguf", "parallel": 4"#)
        let text = try String(contentsOfFile: config, encoding: .utf8)
            .replacingOccurrences(of: #""--fake-loading-delay", "0.2""#,
                                  with: #""--fake-loading-delay", "0.2", "--fake-tokens", "100", "--fake-token-delay", "0.05", "--parallel", "4""#)
        try text.write(toFile: config, atomically: true, encoding: .utf8)
        #expect(try await runCommand(Products.fleet, ["up", "--detach", "--config", config]).code == 0)
        defer { _ = try? runCommandBlocking(Products.fleet, ["down", "--config", config]) }
        let url = "http://127.0.0.1:\(listenPort)"
        let pid = try await ControlClient(baseURL: url).status().controller.pid
        let answers = try await UpstreamClient.with { client in
            try await withThrowingTaskGroup(of: String.self) { group in
                for stream in [true, false, true] {
                    group.addTask {
                        let response = try await client.fetch(UpstreamRequest(
                            method: "POST", url: url + "/v1/completions",
                            body: Array(#"{"model":"fake","stream":\#(stream)}"#.utf8), totalTimeout: .seconds(30)))
                        return "\(response.status) " + response.bodyText
                    }
                }
                try await eventually("three in flight") {
                    try await ControlClient(baseURL: url).status().instances.first?.traffic?.inFlight == 3
                }
                kill(pid, SIGTERM)
                return try await group.reduce(into: []) { $0.append($1) }
            }
        }
        #expect(answers.count == 3)
        for answer in answers {
            #expect(answer.hasPrefix("200 ") && (answer.hasSuffix("data: [DONE]\n\n") || answer.contains("\"choices\"")),
                    "accepted before SIGTERM, answered whole: \(answer.suffix(200))")
        }
        try await eventually(timeout: .seconds(20), "then the controller stops") { !ProcessProbe.isAlive(pid) }
        #expect(processes(matching: directory + "/model.gguf").isEmpty)
    }
}
