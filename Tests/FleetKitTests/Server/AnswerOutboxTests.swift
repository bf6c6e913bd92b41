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

    @Test func partsPutInWhileTheLoopIsAskedGoInOneTake() {
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
        #expect(parts == ["head", "body 10", "body 20", "end"], "every part, in order")
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
}
