import Foundation
import FleetTestSupport
import Testing
@testable import FleetClient
@testable import FleetConfig
@testable import FleetCore
@testable import FleetRouting
@testable import FleetServer
@testable import FleetSupervision
@testable import FleetUpstream

@Suite("restart backoff")
struct RestartBackoffTests {
    func settings(initial: Duration = .seconds(1), max: Duration = .seconds(30), multiplier: Double = 2,
                  maxCrashes: Int = 5, window: Duration = .seconds(60)) -> RestartSettings {
        var s = RestartSettings()
        s.initialDelay = initial
        s.maxDelay = max
        s.multiplier = multiplier
        s.maxCrashes = maxCrashes
        s.crashWindow = window
        return s
    }

    @Test func delaysGrowExponentiallyUpToTheCap() {
        var backoff = RestartBackoff(settings: settings(max: .seconds(5), maxCrashes: 100))
        let start = ContinuousClock.now
        let delays = (0..<5).map { backoff.recordCrash(at: start + .seconds($0)) }
        #expect(delays == [.restart(after: .seconds(1)), .restart(after: .seconds(2)), .restart(after: .seconds(4)),
                           .restart(after: .seconds(5)), .restart(after: .seconds(5))])
    }

    @Test func crashLoopGivesUpAtMaxCrashes() {
        var backoff = RestartBackoff(settings: settings(maxCrashes: 3))
        let start = ContinuousClock.now
        #expect(backoff.recordCrash(at: start) == .restart(after: .seconds(1)))
        #expect(backoff.recordCrash(at: start + .seconds(1)) == .restart(after: .seconds(2)))
        #expect(backoff.recordCrash(at: start + .seconds(2)) == .giveUp(crashes: 3))
    }

    @Test func crashesOutsideTheWindowAreForgotten() {
        var backoff = RestartBackoff(settings: settings(maxCrashes: 3, window: .seconds(10)))
        let start = ContinuousClock.now
        _ = backoff.recordCrash(at: start)
        _ = backoff.recordCrash(at: start + .seconds(1))
        // A long healthy run later: the old crashes no longer count, and the delay starts small again.
        #expect(backoff.recordCrash(at: start + .seconds(60)) == .restart(after: .seconds(1)))
        #expect(backoff.recentCrashes == 1)
    }
}

@Suite("port allocation")
struct PortAllocatorTests {
    @Test func handsOutFreePortsOnceEach() throws {
        var allocator = PortAllocator(range: 9000...9003)
        let taken: Set<Int> = [9001]
        let a = try allocator.allocate { !taken.contains($0) }
        let b = try allocator.allocate { !taken.contains($0) }
        let c = try allocator.allocate { !taken.contains($0) }
        #expect([a, b, c] as [Int] == [9000, 9002, 9003])
        #expect(throws: PortAllocator.Exhausted.self) { try allocator.allocate { !taken.contains($0) } }
    }

    @Test func releasedPortsComeBackAfterTheRestOfTheRange() throws {
        var allocator = PortAllocator(range: 9000...9002)
        let first = try allocator.allocate { _ in true }
        allocator.release(first)
        #expect(try allocator.allocate { _ in true } == 9001)
        #expect(try allocator.allocate { _ in true } == 9002)
        #expect(try allocator.allocate { _ in true } == 9000)
    }

    @Test func exhaustionSaysWhatToChange() {
        var allocator = PortAllocator(range: 9000...9000)
        #expect { try allocator.allocate { _ in false } } throws: { "\($0)".contains("widen portRange") }
    }

    @Test func aListeningPortIsNotFree() throws {
        let port = TestPorts.block(1).lowerBound
        #expect(PortAllocator.isFree(port))
        let fd = occupyPort(port)
        defer { close(fd) }
        #expect(!PortAllocator.isFree(port))
    }
}

@Suite("instance states")
struct InstanceStateTests {
    @Test func theLifeOfAnInstanceIsAllowed() {
        let path: [InstanceState] = [.stopped, .starting, .ready, .unhealthy, .ready, .unhealthy, .starting, .ready, .stopping, .stopped]
        for (from, to) in zip(path, path.dropFirst()) {
            #expect(from.canTransition(to: to), "\(from) → \(to)")
        }
    }

    @Test(arguments: [
        (InstanceState.stopped, InstanceState.ready), (.ready, .starting), (.stopped, .unhealthy), (.stopping, .ready),
        (.failed, .ready), (.ready, .stopped), (.starting, .stopped),
    ])
    func shortcutsAreNot(from: InstanceState, to: InstanceState) {
        #expect(!from.canTransition(to: to))
    }

    @Test func onlyFailedStoppedAndIdleAreInactive() {
        #expect(InstanceState.allCases.filter { !$0.isActive } == [.stopped, .failed, .idle])
    }
}

@Suite("progress and status display")
struct DisplayTests {
    func event(_ replica: Int, _ state: InstanceState, detail: String? = nil) -> InstanceEvent {
        InstanceEvent(id: InstanceID(model: "m", replica: replica), previous: .starting, state: state, port: 8100 + replica,
                      pid: 10 + Int32(replica), detail: detail, sinceSpawn: .milliseconds(1500))
    }

    @Test func progressSummarizesOnceEveryInstanceSettled() {
        var progress = UpProgress(total: 2, url: "http://127.0.0.1:8090")
        #expect(progress.handle(event(0, .starting)).count == 1)
        #expect(progress.handle(event(1, .starting)).count == 1)
        let first = progress.handle(event(0, .ready))
        #expect(first == ["m/0            ready     in 1.5s on port 8100 (pid 10)"])
        let last = progress.handle(event(1, .ready))
        #expect(last.count == 2)
        #expect(last[1].contains("fleet is ready: 2/2 instances") && last[1].contains("http://127.0.0.1:8090"))
        #expect(progress.handle(event(1, .unhealthy)).count == 1, "the summary is printed once")
    }

    @Test func progressReportsFailuresWithTheirReason() {
        var progress = UpProgress(total: 1, url: "u")
        let lines = progress.handle(event(0, .failed, detail: "crash loop"))
        #expect(lines[0].contains("failed") && lines[0].contains("crash loop"))
        #expect(lines[1].contains("1 failed instance"))
    }

    @Test func aFailureShowsTheLastLinesOfStandardErrorOneLineEach() {
        var progress = UpProgress(total: 1, url: "u")
        var failed = event(0, .failed, detail: "crash loop: exited with code 1; last output: a | b")
        failed.output = ["llama_model_load: error loading model: tensor data is not within file bounds", "main: exiting"]
        let lines = progress.handle(failed)
        #expect(lines[0].hasSuffix("— crash loop: exited with code 1"), "the reason, without its one-line copy of stderr")
        #expect(lines[1] == "               │ llama_model_load: error loading model: tensor data is not within file bounds")
        #expect(lines[2] == "               │ main: exiting")
    }

    @Test func aLoadingInstanceGetsALineEveryFewSecondsWithWhatItLastWrote() {
        var progress = UpProgress(total: 1, url: "u")
        let start = ContinuousClock.now
        _ = progress.handle(event(0, .starting), now: start)
        let lastLine: (InstanceID) -> String? = { _ in "load_tensors: CPU_Mapped model buffer size = 241.4 MiB" }
        #expect(progress.tick(now: start + .seconds(2), lastLine: lastLine).isEmpty, "not before the interval")
        let lines = progress.tick(now: start + .seconds(5), lastLine: lastLine)
        #expect(lines == ["m/0            loading   5.0s — load_tensors: CPU_Mapped model buffer size = 241.4 MiB"])
        #expect(progress.tick(now: start + .seconds(6), lastLine: lastLine).isEmpty, "one line per interval")
        _ = progress.handle(event(0, .ready), now: start + .seconds(7))
        #expect(progress.tick(now: start + .seconds(20), lastLine: lastLine).isEmpty, "ready: no more loading lines")
    }

    @Test func statusTableShowsEveryInstance() {
        let now = Date()
        let status = FleetStatus(
            controller: ControllerInfo(version: "1", pid: 1, listen: "127.0.0.1:8090", url: "http://127.0.0.1:8090",
                                       config: "fleet.json", startedAt: now.addingTimeInterval(-75), stateDirectory: "/s",
                                       llamaServer: "/l"),
            models: [],
            instances: [
                InstanceStatus(id: "m/0", model: "m", replica: 0, port: 8100, pid: 42, state: .ready, since: now,
                               readySince: now.addingTimeInterval(-3700), restarts: 2, lastError: nil, logFile: "/x"),
                InstanceStatus(id: "m/1", model: "m", replica: 1, port: nil, pid: nil, state: .failed, since: now,
                               readySince: nil, restarts: 4, lastError: "crash loop", logFile: "/y"),
            ])
        let table = StatusTable.render(status, now: now)
        #expect(table.contains("1/2 instances ready"))
        #expect(table.contains("up 1m15s"))
        #expect(table.contains("m/0       8100  42   ready   1h01m   2         -     -       -       -     -\n"))
        #expect(table.contains("m/1       -     -    failed  -       4         -     -       -       -     -      crash loop"))
    }
}

@Suite("status table with traffic")
struct StatusTableTrafficTests {
    @Test func trafficAndModelsAreShown() {
        let now = Date()
        var instance = InstanceStatus(id: "m/0", model: "m", replica: 0, port: 8100, pid: 42, state: .ready, since: now,
                                      readySince: now, restarts: 0, lastError: nil, logFile: "/x")
        var member = PoolMember(kind: .instance(InstanceID(model: "m", replica: 0)), baseURL: "http://x", capacity: 4, ready: true)
        member.inFlight = 3
        var stats = ModelPool.MemberStats()
        stats.served = 17
        stats.errors = 1
        stats.lastLatency = .milliseconds(250)
        stats.tokens = 40
        stats.lastTokensPerSecond = 47.25
        instance.traffic = TrafficStatus(member: member, stats: stats)
        var remote = InstanceStatus(id: "http://h:1", model: "m", replica: -1, port: 1, pid: nil, state: .ready, since: now,
                                    readySince: nil, restarts: 0, lastError: nil, logFile: "")
        remote.managed = false
        let status = FleetStatus(
            controller: ControllerInfo(version: "1", pid: 1, listen: "l", url: "u", config: "c", startedAt: now,
                                       stateDirectory: "/s", llamaServer: "/l"),
            models: [ModelStatus(name: "m", aliases: ["a"], path: "/m", replicas: 1, policy: "leastBusy", queueDepth: 2)],
            instances: [instance, remote])
        let table = StatusTable.render(status, now: now)
        #expect(table.contains("model m (a): leastBusy, 2 queued"))
        #expect(table.contains("3/4   17      1       250ms  47.3"), "\(table)")
        #expect(table.contains("remote"))
    }
}
