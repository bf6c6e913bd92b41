import NIOCore
import Synchronization
import Testing
@testable import FleetUpstream

@Suite("an upstream body between the curl thread and its consumer")
struct UpstreamBodyTests {
    /// Runs a task's jobs only when the test says so: the test decides when a woken consumer runs.
    final class GatedExecutor: TaskExecutor {
        private let jobs = Mutex<[UnownedJob]>([])

        func enqueue(_ job: consuming ExecutorJob) {
            let job = UnownedJob(job)
            jobs.withLock { $0.append(job) }
        }

        var waiting: Int { jobs.withLock { $0.count } }

        /// Runs what is queued; each job runs until its task waits again.
        func run() {
            let queued = jobs.withLock { jobs in
                defer { jobs.removeAll() }
                return jobs
            }
            for job in queued { job.runSynchronously(on: asUnownedTaskExecutor()) }
        }
    }

    private static func offer(_ text: String, to handoff: UpstreamBody.Handoff) -> Bool {
        Array(text.utf8).withUnsafeBytes { handoff.offer($0) }
    }

    @Test func chunksThatArriveBeforeTheWokenConsumerRunsGoOutAsOne() async throws {
        let handoff = UpstreamBody.Handoff(window: 1 << 20, counters: UpstreamCounters(), resume: {}, cancel: {})
        let body = UpstreamBody(handoff: handoff)
        let gate = GatedExecutor()
        let consumer = Task(executorPreference: gate) { () -> [String] in
            var taken: [String] = []
            for try await chunk in body { taken.append(String(buffer: chunk)) }
            return taken
        }
        // The consumer starts and waits: nothing has come yet.
        for _ in 0..<1000 where gate.waiting == 0 { await Task.yield() }
        #expect(gate.waiting == 1)
        gate.run()
        #expect(gate.waiting == 0)

        // curl delivers three events from one read: the first wakes the consumer, which has not run yet.
        #expect(Self.offer("data: a\n\n", to: handoff))
        #expect(gate.waiting == 1)
        #expect(Self.offer("data: b\n\n", to: handoff))
        #expect(Self.offer("data: c\n\n", to: handoff))
        #expect(gate.waiting == 1, "woken once, not once per chunk")
        gate.run()

        // Later chunks, and the end, come as they come.
        #expect(Self.offer("data: d\n\n", to: handoff))
        gate.run()
        handoff.finish(nil)
        gate.run()
        let taken = try await consumer.value
        #expect(taken == ["data: a\n\ndata: b\n\ndata: c\n\n", "data: d\n\n"])
    }
}
