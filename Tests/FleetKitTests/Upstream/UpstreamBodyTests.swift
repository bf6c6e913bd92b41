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
        Array(text.utf8).withUnsafeBytes { handoff.offered($0) } != .refused
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

        func receive(_ chunk: ByteBuffer, force: Bool) -> Bool {
            state.withLock { state in
                guard force || !state.refusing else { return false }
                state.taken.append(String(buffer: chunk))
                return true
            }
        }

        func end(_ error: (any Error)?) {
            state.withLock { $0.ends.append(error.map { "\($0)" } ?? "complete") }
        }
    }

    @Test func aRelayedBodyGetsWhatWasQueuedFirstThenWhatEachPassReadAndItsEndOnce() {
        let counters = UpstreamCounters()
        let resumed = Atomic(0)
        let handoff = UpstreamBody.Handoff(window: 8, counters: counters, resume: { resumed.add(1, ordering: .relaxed) },
                                           cancel: {})
        let body = UpstreamBody(handoff: handoff)
        #expect(Self.offer("a", to: handoff) && Self.offer("b", to: handoff))
        let relay = RecordingRelay()
        body.relay(to: relay)
        #expect(relay.taken == ["ab"], "what was queued goes first, as one")

        // One pass of the curl loop reads two chunks: the first tells the loop to flush after the pass, once.
        #expect(Array("c".utf8).withUnsafeBytes { handoff.offered($0) } == .takenForRelay)
        #expect(Array("d".utf8).withUnsafeBytes { handoff.offered($0) } == .taken)
        #expect(relay.taken == ["ab"], "nothing crosses before the pass ends")
        #expect(handoff.flushRelay())
        #expect(relay.taken == ["ab", "cd"], "the pass's chunks cross as one")

        // The relay's connection is full: what comes waits in the window, then the transfer pauses.
        relay.refuse(true)
        #expect(Array("efgh".utf8).withUnsafeBytes { handoff.offered($0) } == .takenForRelay)
        #expect(!handoff.flushRelay(), "refused: it stays in the window")
        #expect(Self.offer("ijkl", to: handoff))
        #expect(!Self.offer("m", to: handoff), "the window (8 bytes) is full: the transfer pauses")
        relay.refuse(false)
        body.relayControl.resume()
        #expect(resumed.load(ordering: .relaxed) == 1, "the relay can take bytes again: the curl loop is told")
        #expect(handoff.flushRelay() && relay.taken == ["ab", "cd", "efghijkl"])
        #expect(Self.offer("m", to: handoff), "room again")

        #expect(counters.snapshot.bufferedBytes == 13, "held until the relay says it left")
        body.relayControl.delivered(12)
        #expect(counters.snapshot.bufferedBytes == 1)
        handoff.finish(nil)
        handoff.finish(CancellationError())
        #expect(relay.taken.last == "m", "what waits goes to the relay before the end")
        #expect(relay.ends == ["complete"], "the end reaches the relay once")
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

    /// The relay holds its connection, whose outbox holds the body's control: a body that kept its relay after
    /// the end would keep every connection that ever relayed a stream.
    @Test(arguments: [false, true])
    func aBodyLetsGoOfItsRelayAtTheEnd(endedBeforeTheRelay: Bool) {
        let handoff = UpstreamBody.Handoff(window: 1 << 20, counters: UpstreamCounters(), resume: {}, cancel: {})
        let body = UpstreamBody(handoff: handoff)
        weak var gone: RecordingRelay?
        do {
            let relay = RecordingRelay()
            gone = relay
            if endedBeforeTheRelay { handoff.finish(nil) }
            body.relay(to: relay)
            if !endedBeforeTheRelay { handoff.finish(nil) }
            #expect(relay.ends == ["complete"])
        }
        #expect(gone == nil, "the body still holds its relay after the end")
    }
}
