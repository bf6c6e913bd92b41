import Foundation
import NIOCore
import NIOPosix
import Testing
@testable import FleetServer

/// A connection's task runs on the event loop that accepted it: what the gateway's requests rely on to stay on
/// one thread, and what control routes step off.
@Suite("serving a connection on its event loop")
struct EventLoopServingTests {
    private actor Counter {
        var value = 0
        func increment() -> Int { value += 1; return value }
    }

    @Test func aTaskPreferringTheLoopStaysOnItAcrossActorsAndForeignThreadResumes() async {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let counter = Counter()
        let placement = await withTaskExecutorPreference(EventLoopTaskExecutor(loop)) { () async -> [Bool] in
            var onLoop = [loop.inEventLoop]
            // A default actor's code runs on the caller's preferred executor (SE-0417)...
            _ = await counter.increment()
            onLoop.append(loop.inEventLoop)
            // ...and a continuation resumed by another thread (as curl's thread resumes one) comes back to it.
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                Thread { continuation.resume() }.start()
            }
            onLoop.append(loop.inEventLoop)
            try? await Task.sleep(for: .milliseconds(5))
            onLoop.append(loop.inEventLoop)
            return onLoop
        }
        #expect(placement == [true, true, true, true])
        #expect(!loop.inEventLoop)
    }

    @Test func controlWorkStepsOffTheLoop() async {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let (outside, inside, after) = await withTaskExecutorPreference(EventLoopTaskExecutor(loop)) {
            let outside = loop.inEventLoop
            let inside = await withTaskExecutorPreference(globalConcurrentExecutor) { loop.inEventLoop }
            return (outside, inside, loop.inEventLoop)
        }
        #expect(outside)
        #expect(!inside)
        #expect(after)
    }
}
