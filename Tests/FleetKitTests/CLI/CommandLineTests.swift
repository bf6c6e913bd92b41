import Foundation
import FleetTestSupport
import Testing
@testable import FleetCore
@testable import FleetClient

/// The `fleet` executable as users run it, over fake servers: up (foreground and detached), status, down,
/// validate, and no orphans whichever way the controller ends.
@Suite("fleet command line", .timeLimit(.minutes(3)))
struct CommandLineTests {
    let directory = temporaryDirectory()
    let listenPort = TestPorts.block(1).lowerBound

    /// A fleet.json of two fake replicas; its unique folder also marks its processes (`--model <dir>/...`).
    func writeConfig(args: [String] = [], replicas: Int = 2) throws -> String {
        _ = fakeGGUF(in: directory)
        let range = TestPorts.block()
        let json = """
            {
              "listen": "127.0.0.1:\(listenPort)",
              "portRange": "\(range.lowerBound)-\(range.upperBound)",
              "llamaServer": "\(Products.fakeServer)",
              "stopTimeout": "5s",
              "healthCheck": { "interval": "200ms", "startupTimeout": "20s" },
              "restart": { "initialDelay": "100ms" },
              "models": { "fake": { "path": "model.gguf", "replicas": \(replicas),
                                    "args": \(String(decoding: try JSONEncoder().encode(["--fake-loading-delay", "0.3"] + args), as: UTF8.self)) } }
            }
            """
        let path = directory + "/fleet.json"
        _ = FileManager.default.createFile(atPath: path, contents: Data(json.utf8))
        return path
    }

    func fleet(_ arguments: String...) async throws -> (code: Int32, output: String) {
        try await runCommand(Products.fleet, arguments)
    }

    var instancesOfThisTest: [Int32] { processes(matching: directory + "/model.gguf") }

    @Test func upDetachedThenStatusThenDownLeavesNothingRunning() async throws {
        let config = try writeConfig()
        let up = try await fleet("up", "--detach", "--config", config)
        #expect(up.code == 0, "\(up.output)")
        #expect(up.output.contains("fleet is ready: 2/2 instances"), "\(up.output)")
        #expect(instancesOfThisTest.count == 2)

        let json = try await fleet("status", "--json", "--config", config)
        #expect(json.code == 0)
        let status = try StatusCoding.decoder().decode(FleetStatus.self, from: Data(json.output.utf8))
        #expect(status.instances.map(\.state) == [.ready, .ready])
        #expect(status.controller.config == config)

        let table = try await fleet("status", "--config", config)
        #expect(table.output.contains("2/2 instances ready"))
        #expect(table.output.contains("fake/0") && table.output.contains("fake/1"))

        let down = try await fleet("down", "--config", config)
        #expect(down.code == 0, "\(down.output)")
        #expect(down.output.contains("fleet stopped"))
        #expect(instancesOfThisTest.isEmpty)
        #expect(!ProcessProbe.isAlive(status.controller.pid))

        let after = try await fleet("status", "--config", config)
        #expect(after.code == 1)
        #expect(after.output.contains("no fleet controller is running"))
    }

    @Test func controllerKilledWithSIGKILLTakesItsInstancesWithIt() async throws {
        let config = try writeConfig()
        #expect(try await fleet("up", "--detach", "--config", config).code == 0)
        let status = try await ControlClient(baseURL: "http://127.0.0.1:\(listenPort)").status()
        #expect(instancesOfThisTest.count == 2)
        kill(status.controller.pid, SIGKILL)
        try await eventually(timeout: .seconds(10), "no orphans") { instancesOfThisTest.isEmpty }
    }

    @Test func controllerStopsEverythingGracefullyOnSIGTERM() async throws {
        let config = try writeConfig()
        #expect(try await fleet("up", "--detach", "--config", config).code == 0)
        let status = try await ControlClient(baseURL: "http://127.0.0.1:\(listenPort)").status()
        kill(status.controller.pid, SIGTERM)
        try await eventually(timeout: .seconds(20), "controller gone") { !ProcessProbe.isAlive(status.controller.pid) }
        #expect(instancesOfThisTest.isEmpty)
        let log = try String(contentsOfFile: directory + "/.fleet/controller.log", encoding: .utf8)
        #expect(log.contains("every instance stopped"), "\(log.suffix(500))")
        // Each instance got SIGTERM and exited by itself (its log says "stopped", not killed after a grace period).
        for replica in 0..<2 {
            let instanceLog = try String(contentsOfFile: directory + "/.fleet/logs/fake-\(replica).log", encoding: .utf8)
            #expect(instanceLog.hasSuffix("--- fleet: stopped ---\n"))
        }
    }

    @Test func foregroundUpShowsProgressAndStopsOnSIGINT() async throws {
        let config = try writeConfig()
        let outputPath = directory + "/up.out"
        // Started with every signal blocked, as Foundation's Process (and some supervisors) start children.
        let process = try ChildProcess(Products.fleet, ["up", "--config", config], output: outputPath, blockSignals: true)
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        try await eventually("ready") { (try? await ControlClient(baseURL: "http://127.0.0.1:\(listenPort)").health())?.ready == 2 }
        // Blocked signals would keep this SIGINT from arriving (corelibs-foundation #4772 starts children that
        // way); fleet unblocks them at start. This checks that too.
        kill(process.processIdentifier, SIGINT)
        try await eventually("exited") { !process.isRunning }
        let output = try String(contentsOfFile: outputPath, encoding: .utf8)
        #expect(process.terminationStatus == 0, "\(output)")
        #expect(output.contains("fake/0         starting  port"))
        #expect(output.contains("fake/1         ready     in"))
        #expect(output.contains("fleet is ready: 2/2 instances — gateway and status at http://127.0.0.1:\(listenPort)"))
        #expect(output.contains("fleet stopped: every instance is down"))
        #expect(instancesOfThisTest.isEmpty)
    }

    @Test func detachedUpReportsAFailingFleetWithTheReason() async throws {
        let config = try writeConfig(args: ["--fake-exit-at-start", "9"], replicas: 1)
        let configText = try String(contentsOfFile: config, encoding: .utf8)
            .replacingOccurrences(of: #""initialDelay": "100ms""#, with: #""initialDelay": "100ms", "maxCrashes": 2"#)
        try configText.write(toFile: config, atomically: true, encoding: .utf8)
        let up = try await fleet("up", "--detach", "--config", config)
        #expect(up.code == 1)
        #expect(up.output.contains("failed"), "\(up.output)")
        #expect(up.output.contains("exited with code 9"), "\(up.output)")
        let down = try await fleet("down", "--config", config)
        #expect(down.code == 0, "the controller keeps running after a failed start, until `fleet down`: \(down.output)")
    }

    @Test func completeAndChatStreamAnswersThroughTheGateway() async throws {
        let config = try writeConfig(replicas: 1)
        #expect(try await fleet("up", "--detach", "--config", config).code == 0)
        defer { _ = try? runCommandBlocking(Products.fleet, ["down", "--config", config]) }

        let complete = try await fleet("complete", "--config", config, "-m", "fake", "--max-tokens", "3", "Say hi")
        #expect(complete.code == 0, "\(complete.output)")
        #expect(complete.output == "tok0 tok1 tok2 \n")

        let json = try await fleet("complete", "--config", config, "-m", "fake", "--json", "Say hi")
        #expect(json.output.contains(#""object":"chat.completion""#))

        let unknown = try await fleet("complete", "--config", config, "-m", "nope", "hi")
        #expect(unknown.code == 1)
        #expect(unknown.output.contains("model \"nope\" does not exist; this fleet serves: fake"))

        let chat = try await runCommand(Products.fleet, ["chat", "--config", config, "-m", "fake", "--max-tokens", "2"],
                                  input: "hello\nand again\n/exit\n")
        #expect(chat.code == 0, "\(chat.output)")
        #expect(chat.output.components(separatedBy: "tok0 tok1").count == 3, "two answers: \(chat.output)")
    }

    @Test func restartSwapAndReloadFromTheCommandLine() async throws {
        let config = try writeConfig(replicas: 1)
        #expect(try await fleet("up", "--detach", "--config", config).code == 0)
        defer { _ = try? runCommandBlocking(Products.fleet, ["down", "--config", config]) }

        let restart = try await fleet("restart", "fake", "--config", config)
        #expect(restart.code == 0, "\(restart.output)")
        #expect(restart.output.contains("fake/0: pid") && restart.output.contains("no request failed"))

        let newModel = fakeGGUF(in: directory, name: "v2.gguf")
        let swap = try await fleet("swap", "fake", newModel, "--config", config)
        #expect(swap.code == 0, "\(swap.output)")
        #expect(try String(contentsOfFile: config, encoding: .utf8).contains(#""path": "v2.gguf""#))

        let text = try String(contentsOfFile: config, encoding: .utf8)
        try text.replacingOccurrences(of: #""replicas": 1"#, with: #""replicas": 2"#).write(toFile: config, atomically: true, encoding: .utf8)
        let reload = try await fleet("reload", "--config", config)
        #expect(reload.code == 0, "\(reload.output)")
        #expect(reload.output.contains("scaled: fake"))

        try text.replacingOccurrences(of: #""replicas": 1"#, with: #""replicas": "many""#).write(toFile: config, atomically: true, encoding: .utf8)
        let invalid = try await fleet("reload", "--config", config)
        #expect(invalid.code == 2)
        #expect(invalid.output.contains("nothing changed") && invalid.output.contains("models.fake.replicas"))

        let both = try await fleet("restart", "--config", config)
        #expect(both.code != 0 && both.output.contains("name one model, or pass --all"))
    }

    @Test func zeroConfigRunsOneModelFromItsPath() async throws {
        let model = fakeGGUF(in: directory, name: "solo.gguf")
        let up = try await runCommand(Products.fleet, ["up", "--detach", "--model", model, "--listen", "127.0.0.1:\(listenPort)"],
                                environment: ["FLEET_LLAMA_SERVER": Products.fakeServer], directory: directory)
        #expect(up.code == 0, "\(up.output)")
        #expect(up.output.contains("solo/0"))
        let down = try await fleet("down", "--url", "http://127.0.0.1:\(listenPort)")
        #expect(down.code == 0, "\(down.output)")
    }

    @Test func validatePrintsEveryProblemAndExitsTwo() async throws {
        let path = directory + "/bad.json"
        _ = FileManager.default.createFile(atPath: path, contents: Data("""
            { "listen": "nowhere", "models": { "m": { "path": "missing.gguf", "replica": 2 } } }
            """.utf8))
        let result = try await fleet("validate", "--config", path)
        #expect(result.code == 2)
        #expect(result.output.contains("3 problems"), "\(result.output)")
        #expect(result.output.contains("listen:"))
        #expect(result.output.contains("models.m.replica: unknown key"))
        #expect(result.output.contains("models.m.path:") && result.output.contains("missing.gguf does not exist"))

        let good = try await fleet("validate", "--config", try writeConfig())
        #expect(good.code == 0)
        #expect(good.output.contains("OK — 1 model(s), 2 instance(s)"))
    }

    @Test func upWithAnInvalidConfigStartsNothing() async throws {
        let path = directory + "/bad.json"
        _ = FileManager.default.createFile(atPath: path, contents: Data(#"{ "models": { "m": { "path": "x.gguf" } } }"#.utf8))
        let result = try await fleet("up", "--config", path)
        #expect(result.code == 2)
        #expect(result.output.contains("x.gguf does not exist"))
    }
}
