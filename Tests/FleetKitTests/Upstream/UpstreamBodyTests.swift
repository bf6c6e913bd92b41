import FleetCore
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

    /// A relay that takes what it is told to, and keeps what it took and how the body ended.
    final class RecordingRelay: UpstreamBodyRelay {
        private struct State {
            var taken: [String] = []
            var refusing = false
            var ends: [String] = []
        }
        private let state = Mutex(State())

        func refuse(_ refusing: Bool) { state.withLock { $0.refusing = refusing } }
        var taken: [String] { state.withLock { $0.taken } }
        var ends: [String] { state.withLock { $0.ends } }

        func receive(_ bytes: UnsafeRawBufferPointer, force: Bool) -> Bool {
            state.withLock { state in
                guard force || !state.refusing else { return false }
                state.taken.append(String(decoding: bytes, as: UTF8.self))
                return true
            }
        }

        func end(_ error: (any Error)?) {
            state.withLock { $0.ends.append(error.map { "\($0)" } ?? "complete") }
        }
    }

    @Test func aRelayedBodyGetsWhatWasQueuedFirstThenEveryChunkAndItsEndOnce() {
        let counters = UpstreamCounters()
        let resumed = Atomic(0)
        let handoff = UpstreamBody.Handoff(window: 1 << 20, counters: counters, resume: { resumed.add(1, ordering: .relaxed) },
                                           cancel: {})
        let body = UpstreamBody(handoff: handoff)
        #expect(Self.offer("a", to: handoff) && Self.offer("b", to: handoff))
        let relay = RecordingRelay()
        body.relay(to: relay)
        #expect(relay.taken == ["ab"], "what was queued goes first, as one")
        #expect(Self.offer("c", to: handoff))
        relay.refuse(true)
        #expect(!Self.offer("d", to: handoff), "refused: the transfer pauses")
        #expect(resumed.load(ordering: .relaxed) == 0)
        relay.refuse(false)
        body.relayControl.resume()
        #expect(resumed.load(ordering: .relaxed) == 1, "the relay can take bytes again: the transfer goes on")
        body.relayControl.resume()
        #expect(resumed.load(ordering: .relaxed) == 1, "not paused any more: nothing to resume")
        #expect(Self.offer("d", to: handoff))
        #expect(relay.taken == ["ab", "c", "d"])
        #expect(counters.snapshot.bufferedBytes == 4, "what the relay took is held until it says it left")
        body.relayControl.delivered(4)
        #expect(counters.snapshot.bufferedBytes == 0)
        handoff.finish(nil)
        handoff.finish(CancellationError())
        #expect(relay.ends == ["complete"])
    }

    @Test func aBodyThatEndedBeforeItWasRelayedHandsOverItsRestAndItsEnd() {
        let handoff = UpstreamBody.Handoff(window: 1 << 20, counters: UpstreamCounters(), resume: {}, cancel: {})
        let body = UpstreamBody(handoff: handoff)
        #expect(Self.offer("last", to: handoff))
        handoff.finish(CancellationError())
        let relay = RecordingRelay()
        body.relay(to: relay)
        #expect(relay.taken == ["last"] && relay.ends == ["CancellationError()"])
    }
}
