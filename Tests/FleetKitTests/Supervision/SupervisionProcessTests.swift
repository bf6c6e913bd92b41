import Foundation
import FleetTestSupport
import Testing
@testable import FleetSupervision
@testable import FleetUpstream
@testable import FleetCore
@testable import FleetConfig

/// Real processes (the fake llama-server) under the real supervisor.
@Suite("supervision of real processes", .timeLimit(.minutes(2)))
struct SupervisionProcessTests {
    let directory = temporaryDirectory()

    @Test func instancesLoadThenBecomeReadyOnTheirOwnPorts() async throws {
        let config = fakeFleetConfig(directory: directory, args: ["--fake-loading-delay", "0.6"], replicas: 2)
        try await withFakeSupervisor(config) { supervisor, events in
            #expect(await supervisor.statuses().count == 2, "status lists every instance from the start")
            try await eventually("both ready") { await supervisor.statuses().allSatisfy { $0.state == .ready } }
            let statuses = await supervisor.statuses()
            #expect(statuses.map(\.id) == ["fake/0", "fake/1"])
            #expect(Set(statuses.compactMap(\.port)).count == 2)
            #expect(statuses.allSatisfy { config.portRange.contains($0.port ?? 0) && $0.pid != nil && $0.readySince != nil })
            #expect(events.states(of: "fake/0") == [.starting, .ready])
            let ready = try #require(events.all.first { $0.id.description == "fake/0" && $0.state == .ready })
            #expect(ready.sinceSpawn != nil, "ready says how long loading took")
            for status in statuses {
                let health = try await UpstreamClient.with { try await $0.fetch(UpstreamRequest(url: "http://127.0.0.1:\(status.port!)/health")) }
                #expect(health.status == 200)
            }
        }
    }

    @Test func instanceNotReadyInTimeIsRestartedThenFailed() async throws {
        let config = fakeFleetConfig(directory: directory, args: ["--fake-loading-delay", "600"]) {
            $0.healthCheck.startupTimeout = .milliseconds(500)
            $0.restart.maxCrashes = 2
        }
        try await withFakeSupervisor(config) { supervisor, events in
            try await eventually("failed") { await supervisor.status("fake/0")?.state == .failed }
            let status = try #require(await supervisor.status("fake/0"))
            #expect(status.lastError?.contains("not ready after") == true, "\(status.lastError ?? "")")
            #expect(status.lastError?.contains("loading model") == true)
            #expect(status.restarts == 1)
            #expect(status.pid == nil)
            #expect(events.states(of: "fake/0") == [.starting, .unhealthy, .starting, .failed])
        }
    }

    @Test func processExitingAtStartReportsItsExitCodeAndStderr() async throws {
        let config = fakeFleetConfig(directory: directory, args: ["--fake-exit-at-start", "7"]) { $0.restart.maxCrashes = 1 }
        try await withFakeSupervisor(config) { supervisor, _ in
            try await eventually("failed") { await supervisor.status("fake/0")?.state == .failed }
            let error = try #require(await supervisor.status("fake/0")?.lastError)
            #expect(error.contains("exited with code 7"), "\(error)")
            #expect(error.contains("exiting at start on cue"), "the last stderr lines ride along: \(error)")
            #expect(await supervisor.status("fake/0")?.lastOutput?.contains { $0.contains("exiting at start on cue") } == true,
                    "and whole, line by line, in status")
        }
        let log = try String(contentsOfFile: directory + "/logs/fake-0.log", encoding: .utf8)
        #expect(log.contains("exiting at start on cue"), "output is captured in the instance's log file")
    }

    @Test func crashedInstanceIsRestartedWithBackoffAndServesAgain() async throws {
        // The exit, not a probe that finds the port closed first, is what this test is about: probes need 4 s of
        // failures to declare it dead, so a busy machine's slower exit notice still comes first.
        let config = fakeFleetConfig(directory: directory, args: ["--fake-crash-after", "1"]) {
            $0.healthCheck.unhealthyAfter = 20
        }
        try await withFakeSupervisor(config) { supervisor, events in
            try await eventually("ready") { await supervisor.status("fake/0")?.state == .ready }
            let before = try #require(await supervisor.status("fake/0"))
            let answer = try await UpstreamClient.with {
                try await $0.fetch(UpstreamRequest(method: "POST", url: "http://127.0.0.1:\(before.port!)/v1/completions", body: Array("{}".utf8)))
            }
            #expect(answer.status == 200)
            try await eventually("restarted") {
                let now = await supervisor.status("fake/0")
                return now?.state == .ready && now?.restarts == 1
            }
            let after = try #require(await supervisor.status("fake/0"))
            #expect(after.pid != before.pid)
            #expect(after.port == before.port, "a restarted instance keeps its port when it is free")
            #expect(events.states(of: "fake/0") == [.starting, .ready, .unhealthy, .starting, .ready])
            let crash = try #require(events.all.first { $0.state == .unhealthy })
            #expect(crash.detail?.contains("exited with code 3") == true)
            #expect(crash.detail?.contains("restarting in") == true)
        }
    }

    @Test func crashLoopIsReportedAsFailedInsteadOfSpinning() async throws {
        let config = fakeFleetConfig(directory: directory, args: ["--fake-exit-at-start", "1"]) {
            $0.restart.maxCrashes = 3
            $0.restart.initialDelay = .milliseconds(50)
        }
        try await withFakeSupervisor(config) { supervisor, events in
            try await eventually("failed") { await supervisor.status("fake/0")?.state == .failed }
            let status = try #require(await supervisor.status("fake/0"))
            #expect(status.lastError?.hasPrefix("crash loop: 3 failures") == true, "\(status.lastError ?? "")")
            #expect(status.restarts == 2)
            try await Task.sleep(for: .milliseconds(500))
            #expect(events.all.count == 6, "no more starts after failed: \(events.all.map(\.state))")
        }
    }

    @Test func unhealthyInstanceLeavesRotationThenIsRestarted() async throws {
        let config = fakeFleetConfig(directory: directory) {
            $0.healthCheck.interval = .milliseconds(100)
            $0.healthCheck.unhealthyAfter = 2
            $0.healthCheck.restartAfter = 5
        }
        try await withFakeSupervisor(config) { supervisor, events in
            try await eventually("ready") { await supervisor.status("fake/0")?.state == .ready }
            let port = try #require(await supervisor.status("fake/0")?.port)
            // From now on the fake's /health answers 500 while the process stays up.
            _ = try await UpstreamClient.with {
                try await $0.fetch(UpstreamRequest(method: "POST", url: "http://127.0.0.1:\(port)/fake/unhealthy", body: []))
            }
            try await eventually("restarted") { await supervisor.status("fake/0")?.restarts == 1 }
            let states = events.states(of: "fake/0")
            #expect(Array(states.prefix(3)) == [.starting, .ready, .unhealthy], "\(states)")
            let unhealthy = try #require(events.all.first { $0.state == .unhealthy })
            #expect(unhealthy.detail?.contains("2 failed health checks") == true, "\(unhealthy.detail ?? "")")
            #expect(states.filter { $0 == .starting }.count == 2, "restarted after restartAfter failures: \(states)")
        }
    }

    /// The pid of fake/0 once it is ready, read from the same status that says so (on a loaded machine a
    /// second read may already see the next process life).
    func readyPid(_ supervisor: Supervisor) async throws -> Int32 {
        var pid: Int32?
        try await eventually("ready") {
            let status = await supervisor.status("fake/0")
            pid = status?.state == .ready ? status?.pid : nil
            return pid != nil
        }
        return try #require(pid)
    }

    /// Runs one fake instance until ready, stops the supervisor, and returns its pid and how long the stop took.
    func stopOnce(args: [String] = [], grace: Duration) async throws -> (pid: Int32, took: Duration) {
        let config = fakeFleetConfig(directory: directory, args: args) { $0.stopTimeout = grace }
        var pid: Int32 = 0
        var stopStarted = ContinuousClock.now
        try await withFakeSupervisor(config) { supervisor, _ in
            pid = try await readyPid(supervisor)
            stopStarted = .now
        }
        return (pid, ContinuousClock.now - stopStarted)
    }

    @Test func anInstanceRetiredWhileLoadingStopsInsteadOfComingBackReady() async throws {
        // The drain outlasts the loading, so the instance answers its readiness probe while already on its way
        // out: it must stay out (no `ready` after `stopping`) and end `stopped`, or the retire never returns.
        let config = fakeFleetConfig(directory: directory, args: ["--fake-loading-delay", "0.3"])
        try await withFakeSupervisor(config, drain: { _ in try? await Task.sleep(for: .seconds(1.5)) }) { supervisor, events in
            try await eventually("spawned") { await supervisor.status("fake/0")?.pid != nil }
            let pid = try #require(await supervisor.status("fake/0")?.pid)
            let report = await supervisor.apply(models: [])
            #expect(report.removed == ["fake"])
            #expect(await supervisor.statuses().isEmpty)
            #expect(!ProcessProbe.isAlive(pid))
            let states = events.states(of: "fake/0")
            #expect(states.last == .stopped && !states.drop(while: { $0 != .stopping }).contains(.ready), "\(states)")
        }
    }

    @Test func stopSendsSIGTERMAndTheProcessExits() async throws {
        let grace = Duration.seconds(30)
        let (pid, took) = try await stopOnce(grace: grace)
        // run() has returned, so the process is gone; well within the grace period, so SIGTERM (not the SIGKILL
        // that follows the grace period) ended it.
        #expect(!ProcessProbe.isAlive(pid))
        #expect(took < grace)
        let log = try String(contentsOfFile: directory + "/logs/fake-0.log", encoding: .utf8)
        #expect(log.contains("--- fleet: stopped ---"))
    }

    @Test func processIgnoringSIGTERMIsKilledAfterTheGracePeriod() async throws {
        let grace = Duration.milliseconds(800)
        let (pid, took) = try await stopOnce(args: ["--fake-ignore-sigterm"], grace: grace)
        #expect(!ProcessProbe.isAlive(pid), "SIGKILL ended what SIGTERM could not")
        #expect(took >= grace, "the process got its grace period before SIGKILL (took \(took))")
    }

    @Test func instancesRunInTheirOwnProcessGroup() async throws {
        let config = fakeFleetConfig(directory: directory)
        try await withFakeSupervisor(config) { supervisor, _ in
            let pid = try await readyPid(supervisor)
            #expect(getpgid(pid) == pid)
            #expect(getpgid(pid) != getpgid(0))
        }
    }
}
