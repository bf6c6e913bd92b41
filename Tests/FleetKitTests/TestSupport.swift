import Foundation
import Synchronization
import Testing
import Logging
@testable import FleetKit

/// Where `swift build` put the package's executables (beside the test bundle).
enum Products {
    static var directory: String {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while url.pathComponents.count > 1 {
            url.deleteLastPathComponent()
            if FileManager.default.isExecutableFile(atPath: url.appendingPathComponent("fake-llama-server").path) {
                return url.path
            }
        }
        return FileManager.default.currentDirectoryPath + "/.build/debug"
    }

    static var fakeServer: String { directory + "/fake-llama-server" }
    static var fleet: String { directory + "/fleet" }
}

/// Hands each test its own block of ports, so tests run in parallel without meeting.
enum TestPorts {
    private static let next = Mutex(20_000 + Int(getpid() % 500) * 40)

    /// A block of `count` consecutive ports that are free right now.
    static func block(_ count: Int = 10) -> ClosedRange<Int> {
        while true {
            let start = next.withLock { value -> Int in
                let start = value
                value = value + count >= 60_000 ? 20_000 : value + count
                return start
            }
            let range = start...(start + count - 1)
            if range.allSatisfy(PortAllocator.isFree) { return range }
        }
    }
}

/// A fresh directory under /tmp, for state and config files.
func temporaryDirectory(_ name: String = #function) -> String {
    let safe = name.filter { $0.isLetter || $0.isNumber }
    let path = NSTemporaryDirectory() + "fleet-tests/\(safe)-\(UUID().uuidString.prefix(8))"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Writes a file that passes fleet's GGUF check (the magic bytes and nothing else).
func fakeGGUF(in directory: String, name: String = "model.gguf") -> String {
    let path = directory + "/" + name
    _ = FileManager.default.createFile(atPath: path, contents: Data("GGUF".utf8) + Data(count: 28))
    return path
}

/// Polls `condition` until it holds or `timeout` passes. Generous timeouts: these wait for processes, and a
/// loaded CI machine is slow; the assertion is that the state is reached, not how fast.
func eventually(timeout: Duration = .seconds(30), _ what: String = "",
                _ condition: () async throws -> Bool, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    Issue.record("timed out after \(timeout) waiting for \(what)", sourceLocation: sourceLocation)
    throw CancellationError()
}

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
func withFakeSupervisor(_ config: FleetConfig, body: (Supervisor, EventRecorder) async throws -> Void) async throws {
    let recorder = EventRecorder()
    try await UpstreamClient.with { client in
        let supervisor = Supervisor(config: config, executable: Products.fakeServer, client: client,
                                    logger: testLogger, observe: recorder.record)
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

/// Quiet unless something goes wrong: state changes are asserted through events, not read from logs.
let testLogger: Logger = {
    var logger = Logger(label: "fleet-test")
    logger.logLevel = .warning
    return logger
}()

/// Runs a command to completion and returns its exit code and output (stdout and stderr together).
@discardableResult
func runCommand(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                directory: String? = nil) throws -> (code: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    // A file, not a pipe: a detached controller the command starts must not hold our read end open.
    let outputPath = NSTemporaryDirectory() + "fleet-tests/output-\(UUID().uuidString)"
    _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
    defer { try? FileManager.default.removeItem(atPath: outputPath) }
    let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
    process.standardOutput = output
    process.standardError = output
    try process.run()
    process.waitUntilExit()
    try output.close()
    let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
    return (process.terminationStatus, text)
}

/// Every live process whose command line contains `needle`.
func processes(matching needle: String) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap(Int32.init).filter { pid in
        guard ProcessProbe.isAlive(pid),
              let raw = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        return String(decoding: raw.map { $0 == 0 ? 32 : $0 }, as: UTF8.self).contains(needle)
    }
}
