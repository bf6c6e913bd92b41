import NIOCore
import NIOPosix
import ServiceLifecycle

/// Runs Swift tasks on NIO's event loop threads instead of the global cooperative pool: the HTTP server's
/// tasks (one per connection, and the handlers and actors they call) run with this executor as their
/// preference, so a request read on an event loop is handled on that loop — no thread switch between the
/// socket and the handler, and none back to write the answer.
///
/// A job goes to the event loop it is enqueued from; from another thread (the curl thread resuming a request
/// whose answer arrived), to the loop the work names (`UpstreamRequest.eventLoop`) or else the next loop.
final class EventLoopExecutor: TaskExecutor {
    let group: MultiThreadedEventLoopGroup

    /// The executor the current task prefers, for the unstructured tasks it starts (which do not inherit a
    /// preference the way child tasks do); nil outside the HTTP server.
    @TaskLocal static var current: EventLoopExecutor?

    init(group: MultiThreadedEventLoopGroup) {
        self.group = group
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let loop = MultiThreadedEventLoopGroup.currentEventLoop ?? group.next()
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// A service whose `run()` prefers `executor` for every task it starts.
struct PreferringExecutor<Wrapped: Service>: Service {
    let service: Wrapped
    let executor: EventLoopExecutor

    func run() async throws {
        try await EventLoopExecutor.$current.withValue(executor) {
            try await withTaskExecutorPreference(executor) {
                try await service.run()
            }
        }
    }
}
