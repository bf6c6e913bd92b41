import Foundation
import FleetTestSupport
import Synchronization
import Testing
@testable import FleetCore
@testable import FleetConfig
@testable import FleetSupervision
@testable import FleetClient
@testable import FleetUpstream
@testable import FleetServer

/// Where `swift build` put the package's executables (beside the test bundle).
/// Hands each test its own block of ports, so tests run in parallel without meeting.
/// A fresh directory under /tmp, for state and config files.
/// Writes a file that passes fleet's GGUF check (the magic bytes and nothing else).
func fakeGGUF(in directory: String, name: String = "model.gguf") -> String {
    let path = directory + "/" + name
    _ = FileManager.default.createFile(atPath: path, contents: Data("GGUF".utf8) + Data(count: 28))
    return path
}

/// Polls `condition` until it holds or `timeout` passes. Generous timeouts: these wait for processes, and a
/// loaded CI machine is slow; the assertion is that the state is reached, not how fast.
/// Collects instance events in order.
final class EventRecorder: Sendable {
    private let events = Mutex<[InstanceEvent]>([])

    func record(_ event: InstanceEvent) { events.withLock { $0.append(event) } }
    var all: [InstanceEvent] { events.withLock { $0 } }
    func states(of id: String) -> [InstanceState] { all.filter { $0.id.description == id }.map(\.state) }
}

/// A fleet of fake servers with fast timings, for process tests.
func fakeFleetConfig(directory: String, args: [String] = [], replicas: Int = 1,
                     configure: (inout FleetConfig) -> Void = { _ in }) -> FleetConfig {
    var model = ModelConfig(name: "fake", path: fakeGGUF(in: directory))
    model.replicas = replicas
    model.args = ["--fake-loading-delay", "0.2"] + args
    var health = HealthCheckSettings()
    health.interval = .milliseconds(200)
    health.timeout = .seconds(2)
    health.startupTimeout = .seconds(20)
    var restart = RestartSettings()
    restart.initialDelay = .milliseconds(100)
    restart.maxDelay = .seconds(1)
    restart.maxCrashes = 5
    var config = FleetConfig(source: "test", listen: ListenAddress(host: "127.0.0.1", port: TestPorts.block(1).lowerBound),
                             portRange: TestPorts.block(), stateDirectory: directory, healthCheck: health,
                             restart: restart, stopTimeout: .seconds(2), models: [model])
    configure(&config)
    return config
}

/// Runs a supervisor over fake servers for the duration of `body`, then stops it and waits until every
/// process is gone.
func withFakeSupervisor(_ config: FleetConfig, drain: @escaping @Sendable (InstanceID) async -> Void = { _ in },
                        body: (Supervisor, EventRecorder) async throws -> Void) async throws {
    let recorder = EventRecorder()
    try await UpstreamClient.with { client in
        let supervisor = Supervisor(config: config, executable: Products.fakeServer, client: client,
                                    logger: testLogger, drain: drain, observe: recorder.record)
        let running = Task { try await supervisor.run() }
        do {
            try await body(supervisor, recorder)
        } catch {
            running.cancel()
            _ = try? await running.value
            throw error
        }
        running.cancel()
        try await running.value
    }
}

extension Supervisor {
    func status(_ id: String) async -> InstanceStatus? {
        await statuses().first { $0.id == id }
    }
}

/// Runs a whole controller (gateway included) over fake servers for the duration of `body`, then shuts it down
/// through the control API and waits until every process is gone.
func withController(_ config: FleetConfig, waitForReady ready: Int? = nil,
                    body: (_ url: String, _ control: ControlClient) async throws -> Void) async throws {
    let controller = FleetController(config: config, executable: Products.fakeServer, logger: testLogger, handleSignals: false)
    let running = Task { try await controller.run() }
    let control = ControlClient(baseURL: config.listen.url, apiKey: config.keys.admin.first ?? config.keys.user.first)
    do {
        let expected = ready ?? config.models.reduce(0) { $0 + $1.replicas }
        try await eventually("\(expected) instances ready") { (try? await control.status())?.readyCount == expected }
        try await body(config.listen.url, control)
    } catch {
        running.cancel()
        _ = try? await running.value
        throw error
    }
    try await control.shutdown()
    try await running.value
}

/// A fake llama-server fleet does not manage (an unmanaged endpoint); killed when the returned process is.
func startFakeEndpoint(_ args: [String]) async throws -> (process: ChildProcess, url: String) {
    let port = TestPorts.block(1).lowerBound
    let process = try ChildProcess(Products.fakeServer, ["--port", String(port), "--fake-loading-delay", "0"] + args)
    let url = "http://127.0.0.1:\(port)"
    try await eventually("endpoint up") {
        (try? await UpstreamClient.with { try await $0.fetch(UpstreamRequest(url: url + "/health")) })?.status == 200
    }
    return (process, url)
}

/// A POST with a JSON body through the upstream client.
func post(_ url: String, _ json: String, client: UpstreamClient) async throws -> UpstreamResponse {
    try await client.fetch(UpstreamRequest(method: "POST", url: url, headers: [("Content-Type", "application/json")],
                                           body: Array(json.utf8), totalTimeout: .seconds(60)))
}

/// What a fake server has seen.
func fakeStats(_ baseURL: String, client: UpstreamClient) async throws -> [String: Any] {
    let response = try await client.fetch(UpstreamRequest(url: baseURL + "/fake/stats"))
    return try JSONSerialization.jsonObject(with: Data(response.bodyText.utf8)) as? [String: Any] ?? [:]
}
