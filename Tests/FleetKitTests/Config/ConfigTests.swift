import Foundation
import FleetTestSupport
import Testing
@testable import FleetConfig

@Suite("fleet.json: decoding and validation")
struct ConfigTests {
    let directory = temporaryDirectory()

    func decode(_ json: String, checkFiles: Bool = true) throws(ConfigError) -> FleetConfig {
        try FleetConfig.decode(Data(json.utf8), source: "fleet.json", baseDirectory: directory, checkFiles: checkFiles)
    }

    func issues(_ json: String, checkFiles: Bool = false) -> [ConfigIssue] {
        do {
            _ = try decode(json, checkFiles: checkFiles)
            return []
        } catch {
            return error.issues
        }
    }

    @Test func minimalModelGetsEveryDefault() throws {
        _ = fakeGGUF(in: directory, name: "m.gguf")
        let config = try decode(#"{ "models": { "m": { "path": "m.gguf" } } }"#)
        #expect(config.listen == ListenAddress(host: "127.0.0.1", port: 8090))
        #expect(config.portRange == 8100...8199)
        #expect(config.stateDirectory == URL(fileURLWithPath: directory).standardizedFileURL.path + "/.fleet")
        #expect(config.healthCheck == HealthCheckSettings())
        #expect(config.restart == RestartSettings())
        #expect(config.stopTimeout == .seconds(10))
        let model = try #require(config.models.first)
        #expect(model.name == "m")
        #expect(model.path == URL(fileURLWithPath: directory + "/m.gguf").standardizedFileURL.path)
        #expect(model.replicas == 1)
        #expect(model.contextSize == nil && model.gpuLayers == nil && model.threads == nil && model.parallel == nil)
        #expect(model.args.isEmpty && model.env.isEmpty && model.aliases.isEmpty && model.defaults.isEmpty)
    }

    @Test func everyKeyIsRead() throws {
        _ = fakeGGUF(in: directory, name: "a.gguf")
        let config = try decode("""
            {
              "$schema": "docs/fleet.schema.json",
              "listen": "0.0.0.0:9000",
              "portRange": "9100-9150",
              "stateDir": "state",
              "stopTimeout": "3s",
              "healthCheck": { "interval": "500ms", "timeout": 1, "startupTimeout": "2m", "unhealthyAfter": 2, "restartAfter": 4 },
              "restart": { "initialDelay": "250ms", "maxDelay": "10s", "multiplier": 3, "maxCrashes": 7, "crashWindow": "1h" },
              "models": {
                "a": {
                  "path": "a.gguf", "replicas": 3, "contextSize": 8192, "gpuLayers": -1, "threads": 4, "parallel": 2,
                  "batchSize": 512, "flashAttention": "auto", "args": ["--seed", "42"], "env": { "X": "1", "N": 2 },
                  "aliases": ["alpha", "a:latest"], "defaults": { "temperature": 0.5, "top_p": 0.9, "top_k": 20 }
                }
              }
            }
            """)
        #expect(config.listen == ListenAddress(host: "0.0.0.0", port: 9000))
        #expect(config.portRange == 9100...9150)
        #expect(config.stateDirectory.hasSuffix("/state"))
        #expect(config.stopTimeout == .seconds(3))
        #expect(config.healthCheck.interval == .milliseconds(500))
        #expect(config.healthCheck.timeout == .seconds(1))
        #expect(config.healthCheck.startupTimeout == .seconds(120))
        #expect(config.healthCheck.unhealthyAfter == 2 && config.healthCheck.restartAfter == 4)
        #expect(config.restart.initialDelay == .milliseconds(250) && config.restart.maxDelay == .seconds(10))
        #expect(config.restart.multiplier == 3 && config.restart.maxCrashes == 7 && config.restart.crashWindow == .seconds(3600))
        let model = try #require(config.models.first)
        #expect(model.replicas == 3 && model.contextSize == 8192 && model.gpuLayers == -1 && model.threads == 4)
        #expect(model.parallel == 2 && model.batchSize == 512 && model.flashAttention == .auto)
        #expect(model.args == ["--seed", "42"])
        #expect(model.env == ["X": "1", "N": "2"])
        #expect(model.aliases == ["alpha", "a:latest"])
        #expect(model.defaults == SamplingDefaults(temperature: 0.5, topP: 0.9, topK: 20))
        #expect(config.model(named: "alpha")?.name == "a")
    }

    @Test func dataPlaneKeysAreRead() throws {
        _ = fakeGGUF(in: directory, name: "a.gguf")
        let config = try decode("""
            { "gateway": { "maxBodySize": "1MiB", "connectTimeout": "500ms", "firstByteTimeout": "1m", "idleTimeout": 30, "retries": 1 },
              "models": {
                "a": { "path": "a.gguf", "policy": "leastBusy", "queue": { "maxSize": 5, "timeout": "3s" } },
                "remote": { "endpoints": ["http://10.0.0.5:8080/"] } } }
            """)
        #expect(config.gateway.maxBodySize == 1 << 20 && config.gateway.connectTimeout == .milliseconds(500))
        #expect(config.gateway.firstByteTimeout == .seconds(60) && config.gateway.idleTimeout == .seconds(30))
        #expect(config.gateway.retries == 1)
        let a = try #require(config.model(named: "a"))
        #expect(a.policy == .leastBusy && a.queue.maxSize == 5 && a.queue.timeout == .seconds(3))
        let remote = try #require(config.model(named: "remote"))
        #expect(remote.replicas == 0 && remote.path.isEmpty)
        #expect(remote.endpoints == ["http://10.0.0.5:8080"])
    }

    @Test func memoryBudgetAndPerModelMemoryAreRead() throws {
        GGUFBuilder.llama(padding: 1 << 20).write(to: directory + "/a.gguf")
        GGUFBuilder.llama().write(to: directory + "/b.gguf")
        let config = try decode("""
            { "memoryBudget": "16GiB",
              "models": { "a": { "path": "a.gguf", "memory": "2GiB" }, "b": { "path": "b.gguf", "start": "onDemand" } } }
            """)
        #expect(config.memoryBudget == 16 << 30)
        #expect(config.model(named: "a")?.memory == 2 << 30)
        #expect(config.model(named: "b")?.memory == nil, "estimated from the GGUF header")
    }

    @Test func aFleetThatCanNeverFitItsMemoryBudgetIsRefusedWithTheNumbers() {
        GGUFBuilder.llama().write(to: directory + "/a.gguf")
        GGUFBuilder.llama().write(to: directory + "/b.gguf")
        let tooSmall = issues("""
            { "memoryBudget": "3GiB",
              "models": { "a": { "path": "a.gguf", "memory": "2GiB", "replicas": 2 }, "b": { "path": "b.gguf", "memory": "1GiB" } } }
            """, checkFiles: true)
        #expect(tooSmall.map(\.path) == ["memoryBudget"])
        #expect(tooSmall.first?.message.contains("need about 5.0 GiB (a 4.0 GiB, b 1.0 GiB) but memoryBudget is 3.0 GiB") == true, "\(tooSmall)")
        let neverStarts = issues("""
            { "memoryBudget": "3GiB",
              "models": { "a": { "path": "a.gguf", "memory": "2GiB" }, "b": { "path": "b.gguf", "memory": "2GiB", "start": "onDemand" } } }
            """, checkFiles: true)
        #expect(neverStarts.map(\.path) == ["models.b"])
        let fits = issues("""
            { "memoryBudget": "3GiB",
              "models": { "a": { "path": "a.gguf", "memory": "2GiB", "idleTimeout": "5m" }, "b": { "path": "b.gguf", "memory": "2GiB", "start": "onDemand" } } }
            """, checkFiles: true)
        #expect(fits.isEmpty, "a can idle out, so b can start: \(fits)")
    }

    @Test func keysComeFromTheFileAndKeyFiles() throws {
        _ = fakeGGUF(in: directory, name: "a.gguf")
        FileManager.default.createFile(atPath: directory + "/keys.txt", contents: Data("# team keys\nfile-key-1111\n\nfile-key-2222\n".utf8))
        let config = try decode("""
            { "apiKeys": ["inline-key-0000"], "apiKeysFile": "keys.txt", "adminKeys": ["admin-key-9999"],
              "models": { "a": { "path": "a.gguf" } } }
            """)
        #expect(config.keys.user == ["inline-key-0000", "file-key-1111", "file-key-2222"])
        #expect(config.keys.admin == ["admin-key-9999"])
        let weak = issues(#"{ "apiKeys": ["short"], "adminKeysFile": "missing.txt", "models": { "a": { "path": "a.gguf" } } }"#,
                          checkFiles: true)
        #expect(Set(weak.map(\.path)) == ["apiKeys[0]", "adminKeysFile"])
        #expect(!weak.contains { $0.description.contains("short\"") }, "a problem never repeats the key")
    }

    @Test func repositoryFleetJSONIsValidWithoutTheModelFile() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let data = try Data(contentsOf: root.appendingPathComponent("fleet.json"))
        let config = try FleetConfig.decode(data, source: "fleet.json", baseDirectory: root.path, checkFiles: false)
        #expect(config.models.map(\.name) == ["gemma"])
        #expect(config.models[0].replicas == 2)
        #expect(config.listen.isLoopback)
    }

    @Test(arguments: [
        (#"{ "models": { "m": { "path": "m.gguf", "replica": 2 } } }"#, "models.m.replica", "did you mean \"replicas\""),
        (#"{ "listn": "1.2.3.4:1", "models": { "m": { "path": "m.gguf" } } }"#, "listn", "did you mean \"listen\""),
        (#"{ "models": { "m": { "path": "m.gguf", "replicas": "two" } } }"#, "models.m.replicas", "expected a whole number"),
        (#"{ "models": { "m": { "path": "m.gguf", "replicas": 1.5 } } }"#, "models.m.replicas", "expected a whole number"),
        (#"{ "models": { "m": { "path": "m.gguf", "replicas": 100 } } }"#, "models.m.replicas", "out of range"),
        (#"{ "models": { "m": { "path": 7 } } }"#, "models.m.path", "expected a string"),
        (#"{ "models": { "m": { } } }"#, "models.m.path", "is required"),
        (#"{ "models": { "m": { "path": "m.gguf", "args": "--seed 42" } } }"#, "models.m.args", "never parsed by a shell"),
        (#"{ "models": { "m": { "path": "m.gguf", "args": ["--port", "1"] } } }"#, "models.m.args", "fleet sets itself"),
        (#"{ "models": { "m": { "path": "m.gguf", "flashAttention": "maybe" } } }"#, "models.m.flashAttention", "expected true"),
        (#"{ "models": { "m": { "path": "m.gguf", "defaults": { "temp": 1 } } } }"#, "models.m.defaults.temp", "unknown key"),
        (#"{ "models": { "m": { "path": "m.gguf", "env": { "A": [1] } } } }"#, "models.m.env.A", "expected a string"),
        (#"{ "listen": "nowhere", "models": { "m": { "path": "m.gguf" } } }"#, "listen", "not host:port"),
        (#"{ "portRange": "9000", "models": { "m": { "path": "m.gguf" } } }"#, "portRange", "not a port range"),
        (#"{ "stopTimeout": "soon", "models": { "m": { "path": "m.gguf" } } }"#, "stopTimeout", "expected a duration"),
        (#"{ "healthCheck": { "unhealthyAfter": 5, "restartAfter": 2 }, "models": { "m": { "path": "m.gguf" } } }"#, "healthCheck.restartAfter", "smaller than unhealthyAfter"),
        (#"{ "models": {} }"#, "models", "no models"),
        (#"{ "models": [] }"#, "models", "expected an object keyed by model name"),
        (#"{ "models": { "a b": { "path": "m.gguf" } } }"#, "models.a b", "not a usable model name"),
        (#"{ "models": { "a": { "path": "m.gguf", "aliases": ["b"] }, "b": { "path": "m.gguf" } } }"#, "models.a.aliases", "is the name of model \"b\""),
        (#"{ "models": { "a": { "path": "m.gguf", "aliases": ["x"] }, "b": { "path": "m.gguf", "aliases": ["x"] } } }"#, "models.b.aliases", "already an alias of \"a\""),
        (#"{ "portRange": "9100-9101", "models": { "m": { "path": "m.gguf", "replicas": 3 } } }"#, "portRange", "has 2 ports for 3 replicas"),
        (#"{ "listen": "127.0.0.1:8100", "models": { "m": { "path": "m.gguf" } } }"#, "listen", "inside portRange"),
        (#"{ "models": { "m": { "path": "m.gguf", "policy": "random" } } }"#, "models.m.policy", "not a policy"),
        (#"{ "models": { "m": { "path": "m.gguf", "queue": { "max_size": 1 } } } }"#, "models.m.queue.max_size", "did you mean \"maxSize\""),
        (#"{ "models": { "m": { "path": "m.gguf", "endpoints": ["10.0.0.1:80"] } } }"#, "models.m.endpoints[0]", "not a server address"),
        (#"{ "models": { "m": { "endpoints": ["http://h:1"], "replicas": 2 } } }"#, "models.m.replicas", "needs a \"path\""),
        (#"{ "gateway": { "maxBodySize": "lots" }, "models": { "m": { "path": "m.gguf" } } }"#, "gateway.maxBodySize", "expected a size"),
    ])
    func eachMistakeIsReportedWithItsKeyPath(json: String, path: String, message: String) {
        let found = issues(json)
        #expect(found.contains { $0.path == path && $0.description.contains(message) }, "\(found)")
        #expect(found.allSatisfy { !$0.fix.isEmpty }, "every issue says how to fix it")
    }

    @Test func everyProblemIsReportedAtOnce() {
        let found = issues(#"""
            { "listen": "x", "portRange": "1-2", "extra": true,
              "models": { "m": { "path": 1, "replicas": -1 }, "n": { "path": "n.gguf", "threads": 0 } } }
            """#)
        #expect(Set(found.map(\.path)) == ["listen", "portRange", "extra", "models.m.path", "models.n.threads"])
    }

    @Test func invalidJSONSaysSo() {
        let found = issues(#"{ "models": { "m": { "path": "m.gguf", } } "#)
        #expect(found.count == 1)
        #expect(found.first?.message.contains("not valid JSON") == true)
    }

    @Test func missingModelFileIsNamed() {
        let found = issues(#"{ "models": { "m": { "path": "nope.gguf" } } }"#, checkFiles: true)
        #expect(found.map(\.path) == ["models.m.path"])
        #expect(found.first?.message.contains("nope.gguf does not exist") == true)
    }

    @Test func fileThatIsNotGGUFIsRejected() {
        _ = FileManager.default.createFile(atPath: directory + "/fake.gguf", contents: Data("not a model".utf8))
        let found = issues(#"{ "models": { "m": { "path": "fake.gguf" } } }"#, checkFiles: true)
        #expect(found.first?.message.contains("is not a GGUF file") == true)
    }

    @Test func missingConfigFileSaysHowToStart() {
        #expect {
            try FleetConfig.load(file: directory + "/absent.json")
        } throws: { error in
            "\(error)".contains("no such file") && "\(error)".contains("--model")
        }
    }

    @Test func unreadableConfigFileSaysSo() throws {
        // A folder where the file should be: exists, cannot be read as a file (whoever runs the test, root too).
        let path = directory + "/folder.json"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        #expect { try FleetConfig.load(file: path) } throws: { "\($0)".contains("cannot read the file") }
    }

    @Test func singleModelRunsOneReplicaNamedAfterTheFile() throws {
        let path = fakeGGUF(in: directory, name: "tiny-model.gguf")
        let config = try FleetConfig.singleModel(path: path)
        #expect(config.models.map(\.name) == ["tiny-model"])
        #expect(config.models[0].replicas == 1)
        #expect(throws: ConfigError.self) { try FleetConfig.singleModel(path: directory + "/missing.gguf") }
    }

    @Test(arguments: [
        ("500ms", Duration.milliseconds(500)), ("2s", .seconds(2)), ("1.5s", .milliseconds(1500)), ("5m", .seconds(300)),
        ("1h", .seconds(3600)), (" 3s ", .seconds(3)),
    ])
    func durationsReadWithUnits(text: String, expected: Duration) {
        #expect(ConfigDuration.parse(text) == expected)
    }

    @Test func durationsRejectNonsense() {
        #expect(ConfigDuration.parse("soon") == nil)
        #expect(ConfigDuration.parse("-1s") == nil)
        #expect(ConfigDuration.parse(.number(-1)) == nil)
        #expect(ConfigDuration.parse(.number(2)) == .seconds(2))
    }

    @Test func listenAddressesParse() {
        #expect(ListenAddress(parsing: "127.0.0.1:8090") == ListenAddress(host: "127.0.0.1", port: 8090))
        #expect(ListenAddress(parsing: ":9000") == ListenAddress(host: "127.0.0.1", port: 9000))
        #expect(ListenAddress(parsing: "[::1]:9000") == ListenAddress(host: "::1", port: 9000))
        #expect(ListenAddress(parsing: "host:99999") == nil)
        #expect(ListenAddress(host: "0.0.0.0", port: 1).url == "http://127.0.0.1:1")
    }
}

extension ConfigTests {
    @Test func everyControllerKeyIsEitherReloadedOrReportedAsNeedingARestart() {
        let restartOnly = Set(FleetConfig.restartOnlySettings.map(\.key))
        #expect(restartOnly.isDisjoint(with: FleetConfig.reloadableKeys))
        #expect(restartOnly.union(FleetConfig.reloadableKeys) == Set(FleetConfig.controllerKeys))
    }

    @Test func aChangedWatchIsReportedAsNeedingARestart() throws {
        let running = try decode(#"{ "models": { "m": { "path": "model.gguf" } } }"#, checkFiles: false)
        let fresh = try decode(#"{ "watch": true, "gateway": { "retries": 1 }, "models": { "m": { "path": "model.gguf" } } }"#,
                               checkFiles: false)
        #expect(fresh.settingsNeedingRestart(comparedWith: running) == ["watch", "gateway"])
    }
}
