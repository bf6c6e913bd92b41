import FleetTestSupport
import Foundation
import Synchronization
import Testing
@testable import FleetClient

@Suite("logs and watching", .timeLimit(.minutes(2)))
struct LogsTests {
    let directory = temporaryDirectory()

    @Test func theLastLinesOfAReplicaAreServedAndNamingIsChecked() async throws {
        try await withController(fakeFleetConfig(directory: directory, replicas: 2)) { url, control in
            let log = try await control.logs(model: "fake", replica: 1, lines: 50)
            #expect(log.contains("--- fleet: spawning:") && log.contains("--port"), "\(log)")
            let one = try await control.logs(model: "fake", replica: 1, lines: 1)
            #expect(one.split(separator: "\n").count == 1)
            await #expect(throws: ControlClient.BadAnswer.self) { try await control.logs(model: "fake", replica: nil, lines: 5) }
            do {
                _ = try await control.logs(model: "fake", replica: nil, lines: 5)
            } catch {
                #expect("\(error)".contains("fake/0, fake/1"), "says which replicas there are")
            }
            await #expect(throws: ControlClient.BadAnswer.self) { try await control.logs(model: "fake", replica: 7, lines: 5) }
            await #expect(throws: ControlClient.BadAnswer.self) { try await control.logs(model: "nope", replica: nil, lines: 5) }
        }
    }

    /// What a follower has received, and its reading task, shared with the test body.
    final class Follower: Sendable {
        private let received = Mutex("")
        private let reading = Mutex<Task<Void, any Error>?>(nil)
        var text: String { received.withLock { $0 } }

        func start(_ stream: AsyncThrowingStream<String, any Error>) {
            reading.withLock {
                $0 = Task { for try await text in stream { self.received.withLock { $0 += text } } }
            }
        }

        func finished() async throws { try await reading.withLock { $0 }?.value }
    }

    @Test func followingGoesOnAcrossAHotSwapAndEndsWithTheController() async throws {
        let follower = Follower()
        try await withController(fakeFleetConfig(directory: directory)) { url, control in
            follower.start(try await control.followLogs(model: "fake", replica: nil, lines: 5))
            try await eventually("the tail arrived") { follower.text.contains("--- fleet: spawning:") }
            _ = try await control.restart(model: "fake")
            try await eventually("followed onto the replacement") {
                follower.text.contains("--- fleet: now following fake-0-g1.log ---")
            }
            #expect(follower.text.components(separatedBy: "--- fleet: spawning:").count >= 3,
                    "the replacement's own start is there too")
        }
        // The controller shut down without waiting for the follower, and the stream ended.
        try await follower.finished()
    }

    @Test func theCommandLinePrintsLogsAndWatchesStatus() async throws {
        try await withController(fakeFleetConfig(directory: directory)) { url, _ in
            let logs = try await runCommand(Products.fleet, ["logs", "fake", "--url", url, "-n", "20"])
            #expect(logs.code == 0 && logs.output.contains("--- fleet: spawning:"), "\(logs.output)")
            let bad = try await runCommand(Products.fleet, ["logs", "fake/x", "--url", url])
            #expect(bad.code == 2 && bad.output.contains("MODEL/REPLICA"))
            // Not a terminal: each refresh prints a whole frame; `timeout` ends the watch. 8 s for frames 0.3 s apart:
            // with 3 s, a loaded CI machine (the whole suite at once) once saw the command print only its first frame.
            let watched = try await runCommand("/usr/bin/timeout", ["8", Products.fleet, "status", "--watch", "--interval", "0.3", "--url", url])
            #expect(watched.code == 124, "runs until stopped")
            #expect(watched.output.components(separatedBy: "fake/0").count >= 3, "refreshed more than once: \(watched.output)")
        }
    }
}
