import Foundation
import FleetTestSupport
import Testing
@testable import FleetCore
@testable import FleetClient

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
        #expect(table.contains("m/0       8100  42   ready   1h01m   2         -     -       -       -     -      -\n"))
        #expect(table.contains("m/1       -     -    failed  -       4         -     -       -       -     -      -      crash loop"))
    }
}
