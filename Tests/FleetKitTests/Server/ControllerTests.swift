import Foundation
import FleetTestSupport
import Testing
@testable import FleetConfig
@testable import FleetServer
@testable import FleetClient
@testable import FleetCore

/// The controller in-process: status endpoint, health, control API, refusing a taken address.
@Suite("controller and status endpoint", .timeLimit(.minutes(2)))
struct ControllerTests {
    let directory = temporaryDirectory()

    func startController(_ config: FleetConfig) -> Task<Void, any Error> {
        let controller = FleetController(config: config, executable: Products.fakeServer, logger: testLogger,
                                         handleSignals: false)
        return Task { try await controller.run() }
    }

    @Test func statusEndpointShowsTheControllerAndEveryInstance() async throws {
        let config = fakeFleetConfig(directory: directory, replicas: 2) { $0.models[0].aliases = ["f"] }
        let running = startController(config)
        defer { running.cancel() }
        let client = ControlClient(baseURL: config.listen.url)
        try await eventually("both ready") { (try? await client.status())?.readyCount == 2 }

        let status = try await client.status()
        #expect(status.controller.pid == getpid())
        #expect(status.controller.url == config.listen.url)
        #expect(status.controller.version == FleetController.version)
        #expect(status.controller.llamaServer == Products.fakeServer)
        #expect(status.models.map(\.name) == ["fake"] && status.models[0].aliases == ["f"] && status.models[0].replicas == 2)
        for instance in status.instances {
            #expect(instance.model == "fake")
            #expect(instance.state == .ready && instance.restarts == 0 && instance.lastError == nil)
            #expect(instance.pid.map(ProcessProbe.isAlive) == true)
            #expect(instance.port.map(config.portRange.contains) == true)
            #expect(instance.logFile.hasPrefix(directory + "/logs/"))
            #expect(instance.since <= Date())
        }
        let health = try await client.health()
        #expect(health.status == "ok" && health.ready == 2 && health.instances == 2)

        let raw = try await client.statusJSON()
        #expect(raw.contains("\"state\" : \"ready\""), "dates and states are plain JSON for scripts: \(raw.prefix(200))")
    }

    @Test func shutdownOverTheControlAPIStopsEverything() async throws {
        let config = fakeFleetConfig(directory: directory, replicas: 2)
        let running = startController(config)
        let client = ControlClient(baseURL: config.listen.url)
        try await eventually("both ready") { (try? await client.status())?.readyCount == 2 }
        let pids = try await client.status().instances.compactMap(\.pid)
        #expect(pids.count == 2)

        try await client.shutdown()
        try await running.value
        #expect(pids.allSatisfy { !ProcessProbe.isAlive($0) })
        await #expect(throws: ControlClient.Unreachable.self) { try await client.status() }
    }

    /// `fleet down` goes through the control API: the answers in flight must run to their end, as on SIGTERM.
    @Test func shutdownOverTheControlAPILetsAStreamUnderWayFinish() async throws {
        let config = fakeFleetConfig(directory: directory, args: ["--fake-tokens", "30", "--fake-token-delay", "0.05"])
        let running = startController(config)
        let control = ControlClient(baseURL: config.listen.url)
        try await eventually("ready") { (try? await control.status())?.readyCount == 1 }
        let connection = try RawConnection(port: config.listen.port)
        let body = "{\"model\":\"fake\",\"prompt\":\"x\",\"max_tokens\":30,\"stream\":true}"
        connection.send("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
        #expect(try await connection.waitFor("data: ", timeout: .seconds(10)))
        try await control.shutdown()
        #expect(try await connection.waitFor("data: [DONE]", timeout: .seconds(20)), "the stream runs to its end")
        #expect(try await connection.waitUntilClosed(timeout: .seconds(10)), "then the connection closes")
        #expect(connection.receivedText.hasSuffix("0\r\n\r\n"), "with the stream's last chunk: it ended whole")
        #expect(connection.receivedText.components(separatedBy: "\"text\":\"tok").count - 1 == 30, "every token")
        try await running.value
    }

    @Test func aSecondControllerOnTheSameAddressIsRefusedBeforeStartingAnything() async throws {
        let config = fakeFleetConfig(directory: directory)
        let running = startController(config)
        defer { running.cancel() }
        let client = ControlClient(baseURL: config.listen.url)
        try await eventually("ready") { (try? await client.status())?.readyCount == 1 }

        var second = config
        second.stateDirectory = directory + "/second"
        let controller = FleetController(config: second, executable: Products.fakeServer, logger: testLogger, handleSignals: false)
        await #expect {
            try await controller.run()
        } throws: { error in
            let inUse = error as? FleetController.ListenAddressInUse
            return inUse?.anotherFleet == true && "\(error)".contains("fleet down --url")
        }
        #expect(!FileManager.default.fileExists(atPath: directory + "/second/logs"), "no instance was started")
    }

    @Test func aListenAddressTakenByAnotherProgramIsRefusedWithTheFix() async throws {
        let config = fakeFleetConfig(directory: directory)
        let fd = occupyPort(config.listen.port)
        defer { close(fd) }
        let controller = FleetController(config: config, executable: Products.fakeServer, logger: testLogger, handleSignals: false)
        await #expect {
            try await controller.run()
        } throws: { error in
            (error as? FleetController.ListenAddressInUse)?.anotherFleet == false && "\(error)".contains("set another \"listen\"")
        }
        #expect(!FileManager.default.fileExists(atPath: directory + "/logs"), "no instance was started")
    }

    @Test func statusWithoutAControllerSaysHowToStartOne() async throws {
        let client = ControlClient(baseURL: "http://127.0.0.1:\(TestPorts.block(1).lowerBound)")
        await #expect { try await client.status() } throws: { "\($0)".contains("fleet up") }
    }

    @Test func controllerAddressComesFromURLThenConfigThenDefault() throws {
        let path = directory + "/fleet.json"
        _ = FileManager.default.createFile(atPath: path, contents: Data(#"{ "listen": "127.0.0.1:9911", "models": 3 }"#.utf8))
        #expect(ControlClient.baseURL(url: "http://h:1", configPath: path) == "http://h:1")
        #expect(ControlClient.baseURL(url: nil, configPath: path) == "http://127.0.0.1:9911", "read even when the rest is invalid")
        #expect(ControlClient.baseURL(url: nil, configPath: directory + "/none.json") == "http://127.0.0.1:8090")
    }
}
