import HTTPTypes
import NIOCore
import NIOHTTPTypes
import Synchronization
import Testing
@testable import FleetServer

/// What an answer's task hands to its connection's event loop: one wake-up of the loop for what comes meanwhile,
/// and a writer that waits while the client does not read or the loop runs late.
@Suite("an answer's outbox between its task and the event loop")
struct AnswerOutboxTests {
    private func chunk(_ count: Int) -> ByteBuffer { ByteBuffer(repeating: UInt8(ascii: "x"), count: count) }

    /// A writer waiting in `ready()`, and whether it has returned or thrown yet.
    private final class Writer: Sendable {
        private final class Flag: Sendable { let value = Atomic(false) }
        private let flag = Flag()
        let task: Task<Void, any Error>

        init(_ outbox: AnswerOutbox) {
            let flag = flag
            task = Task {
                defer { flag.value.store(true, ordering: .releasing) }
                try await outbox.ready()
            }
        }

        private var done: Bool { flag.value.load(ordering: .acquiring) }

        /// Whether it has settled within a moment (asked again after 100 ms when not).
        func settled() async -> Bool {
            for _ in 0..<10 {
                if done { return true }
                try? await Task.sleep(for: .milliseconds(10))
            }
            return done
        }
    }

    @Test func partsPutInWhileTheLoopIsAskedGoInOneTakeWithTheirBodiesJoined() {
        let outbox = AnswerOutbox()
        #expect(outbox.put(HTTPResponse(status: .ok), chunk(10), end: nil), "the first part asks the loop")
        #expect(!outbox.put(nil, chunk(20), end: .some(nil)), "the loop was asked already: no second wake-up")
        let parts = outbox.take().map { part in
            switch part {
            case .head(_): "head"
            case .body(let body): "body \(body.readableBytes)"
            case .end(_): "end"
            }
        }
        #expect(parts == ["head", "body 30", "end"], "every part, in order, the two bodies in one write")
        #expect(outbox.put(nil, chunk(1), end: nil), "after a take, the next part asks the loop again")
    }

    @Test func theWriterWaitsWhileTheClientDoesNotReadAndGoesOnWhenItDoes() async {
        let outbox = AnswerOutbox()
        outbox.set(writable: false)
        let writer = Writer(outbox)
        #expect(await !writer.settled(), "not writable: the writer waits")
        outbox.set(writable: true)
        #expect(await writer.settled(), "writable again: the writer goes on")
    }

    @Test func theWriterWaitsWhileTheLoopHasNotTakenAWindowOfBytes() async {
        let outbox = AnswerOutbox()
        _ = outbox.put(nil, chunk(AnswerOutbox.maxWaiting), end: nil)
        let writer = Writer(outbox)
        #expect(await !writer.settled(), "a window's bytes wait for the loop: the writer waits")
        _ = outbox.take()
        #expect(await writer.settled(), "the loop took them: the writer goes on")
    }

    @Test func aClosedChannelFailsTheWaitingWriterAndEveryLaterOne() async {
        let outbox = AnswerOutbox()
        outbox.set(writable: false)
        let writer = Writer(outbox)
        #expect(await !writer.settled())
        outbox.close()
        await #expect(throws: (any Error).self) { try await writer.task.value }
        await #expect(throws: (any Error).self) { try await outbox.ready() }
        _ = outbox.put(nil, chunk(5), end: nil)
    }

    /// What the outbox told a relayed stream: resumptions, and upstream bytes released.
    private final class RelayLog: Sendable {
        let resumed = Atomic(0)
        let released = Atomic(0)
        var hook: AnswerOutbox.RelayHook {
            .init(resume: { self.resumed.add(1, ordering: .relaxed) }, released: { self.released.add($0, ordering: .relaxed) })
        }
    }

    @Test func aRelayedChunkIsRefusedWhileTheClientDoesNotReadAndTheRelayResumedOnceItDoes() {
        let outbox = AnswerOutbox()
        let log = RelayLog()
        outbox.startRelay(log.hook)
        #expect(outbox.admit(force: false) == .open)
        #expect(outbox.put(HTTPResponse(status: .ok), chunk(10), end: nil, relayed: 12), "the first chunk asks the loop")
        outbox.set(writable: false)
        #expect(outbox.admit(force: false) == .full, "not writable: the chunk is refused (the transfer pauses)")
        #expect(outbox.admit(force: true) == .open, "what was queued before the relay began always goes in")
        #expect(log.resumed.load(ordering: .relaxed) == 0)
        outbox.set(writable: true)
        #expect(log.resumed.load(ordering: .relaxed) == 1, "writable again: the relay is resumed, once")
        outbox.set(writable: true)
        #expect(log.resumed.load(ordering: .relaxed) == 1)
        #expect(log.released.load(ordering: .relaxed) == 0, "nothing taken yet: the upstream bytes are still held")
        _ = outbox.take()
        #expect(log.released.load(ordering: .relaxed) == 12, "taken by the loop: the bytes the chunk came from are released")
    }

    @Test func aWindowOfRelayedBytesWaitingForTheLoopRefusesTheNextUntilItTakesThem() {
        let outbox = AnswerOutbox()
        let log = RelayLog()
        outbox.startRelay(log.hook)
        _ = outbox.put(nil, chunk(AnswerOutbox.maxWaiting), end: nil, relayed: AnswerOutbox.maxWaiting)
        #expect(outbox.admit(force: false) == .full)
        _ = outbox.take()
        #expect(outbox.admit(force: false) == .open && log.resumed.load(ordering: .relaxed) == 1)
    }

    @Test func aClosedConnectionRefusesRelayedChunksForGoodAndReleasesWhatItHeld() {
        let outbox = AnswerOutbox()
        let log = RelayLog()
        outbox.startRelay(log.hook)
        _ = outbox.put(nil, chunk(100), end: nil, relayed: 100)
        outbox.close()
        #expect(log.released.load(ordering: .relaxed) == 100)
        #expect(outbox.admit(force: true) == .closed)
        #expect(!outbox.put(nil, chunk(7), end: nil, relayed: 7), "nothing goes in once closed")
        #expect(log.released.load(ordering: .relaxed) == 107)
    }
}
