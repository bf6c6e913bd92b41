internal import CCurl
import FleetCore
import Foundation
import Glibc
import NIOCore
import Synchronization

/// The one thread that owns curl: the `CURLM` multi handle and every easy handle live and die here.
///
/// Other code talks to it only through `execute` (and the cancelling or reading of what it returned), which put a
/// command in the inbox and wake the thread through an eventfd. The thread waits in `epoll_wait` on curl's sockets
/// and that eventfd (`CurlSocketWatch`), so an idle loop uses no CPU, and hands curl only the sockets that are ready
/// (`curl_multi_socket_action`): a pass costs what is ready, not what is open. Handles are added and removed only
/// between curl calls, never inside a curl callback.
final class CurlEventLoop: Sendable {
    private enum Command {
        case add(id: UInt64, request: UpstreamRequest, sink: TransferSink)
        case cancel(id: UInt64)
        /// The consumer took from a full window: the paused transfer may go on.
        case resume(id: UInt64)
        /// Whether a transfer to `origin` received bytes at or after `since` (`received(from:since:)`).
        case received(origin: String, since: ContinuousClock.Instant, reply: @Sendable (Bool) -> Void)
    }

    private struct Inbox {
        var commands: [Command] = []
        var stopping = false
        /// The loop waits (or is about to) in `epoll_wait` with nothing queued: the next command must wake it.
        /// While it is busy, commands only queue: it looks at the inbox before it waits again.
        var sleeping = false
    }

    /// The `CURLM*`. Sendable by this argument: after `init` the pointer is only dereferenced on the loop
    /// thread, which also cleans it up.
    private struct MultiHandle: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer
    }

    private let multi: MultiHandle
    /// The eventfd that wakes the loop, written from any thread (outside the inbox lock: a write is a syscall,
    /// and the loop takes that lock twice a pass). Closed in `deinit`, when no thread can write it any more.
    private let wakeup: Int32
    /// The epoll descriptor the loop waits on (handed to its `CurlSocketWatch`).
    private let epoll: Int32
    private let inbox = Mutex(Inbox())
    /// How long the loop lingers after a pass that relayed streams' bytes, from `lingerFrom` transfers on and
    /// while every transfer in flight is a stream (`UpstreamRequest.batched`): at most this much is added to a
    /// token under load, and the next read of each stream takes what came meanwhile in one go. Commands (a new
    /// request) still run at once meanwhile; a plain request ends the lingering. From 0.3 to 3 ms were measured;
    /// 2 ms was kept, as 3 ms saved little more and adds more to a token (docs/benchmarks.md, ninth pass).
    static let lingerMilliseconds: Int32 = 2
    /// How long it lingers instead while a plain answer (not `batched`) is in flight beside the streams: short, so
    /// that answer waits little, but long enough that the streams' tokens still gather (without it, plain requests
    /// beside 4 streams had a 50 % higher p99: the streams' reads and wake-ups took the CPU).
    static let briefLingerMicroseconds: UInt32 = 300
    static let lingerFrom = 8
    private let finished = Mutex<CheckedContinuation<Void, Never>?>(nil)
    private let started = Atomic<Bool>(false)
    private let lastID = Atomic<UInt64>(0)
    let counters = UpstreamCounters()

    init() {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
        multi = MultiHandle(pointer: curl_multi_init()!)
        // Keep plenty of idle keep-alive connections: one per instance slot is the steady state.
        _ = fleet_multi_setopt_long(multi.pointer, CURLMOPT_MAXCONNECTS, 1024)
        wakeup = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
    }

    deinit {
        if wakeup >= 0 { close(wakeup) }
        // The loop's `CurlSocketWatch` closes the epoll set; a loop that never ran leaves it here.
        if epoll >= 0, !started.load(ordering: .relaxed) { close(epoll) }
    }

    /// Why no transfer can start, when the loop could not get its descriptors.
    private var unusable: String? {
        guard wakeup < 0 || epoll < 0 else { return nil }
        return "fleet could not create the curl loop's \(wakeup < 0 ? "eventfd" : "epoll set") (out of file descriptors?): raise the open-files limit (ulimit -n) and restart fleet"
    }

    /// Starts a transfer and returns once its head (status and headers) arrived; the body streams on. Cancelling
    /// the waiting task, or dropping the body stream, removes the easy handle at once, which closes the
    /// connection so the upstream sees the client go.
    /// - Throws: `UpstreamError` when the transfer fails before the head, `CancellationError` when cancelled.
    func execute(_ request: UpstreamRequest) async throws -> UpstreamStream {
        // Everything but the wait is set up in plain functions: this frame stays small (it is allocated from the
        // calling task's stack, which a connection keeps at its largest size).
        let transfer = try prepare(request)
        return try await withTaskCancellationHandler {
            try await head(of: transfer)
        } onCancel: {
            post(.cancel(id: transfer.id))
        }
    }

    /// Starts the transfer and waits for its head. A function of its own: the continuation written inline in
    /// `execute`'s closure made that closure's frame 1,280 bytes (measured with a `swift_task_alloc` probe).
    ///
    /// An unsafe continuation (a checked one allocates its guard on every request): the head is delivered exactly
    /// once, by the transfer (`CurlTransfer.sendHead` and `finish(throwing:)`, both behind `headSent`) or, for a
    /// transfer that never started, by `fail` (once per command: at the stop, the commands it took; after the
    /// loop, those still queued; or by `post` when the command could not be queued).
    private func head(of transfer: PreparedTransfer) async throws -> UpstreamStream {
        try await withUnsafeThrowingContinuation { (head: UnsafeContinuation<UpstreamStream, any Error>) in
            start(transfer, head: head)
        }
    }

    /// A transfer between `execute` and the loop's taking it.
    private final class PreparedTransfer: Sendable {
        let id: UInt64
        let request: UpstreamRequest
        let body: UpstreamBody
        let cancel: @Sendable () -> Void

        init(id: UInt64, request: UpstreamRequest, body: UpstreamBody, cancel: @escaping @Sendable () -> Void) {
            self.id = id
            self.request = request
            self.body = body
            self.cancel = cancel
        }
    }

    @inline(never)
    private func prepare(_ request: UpstreamRequest) throws -> PreparedTransfer {
        if let unusable { throw UpstreamError(kind: .invalidRequest, url: request.url, detail: unusable) }
        // After a stop, the add fails (`post(_:orFail:)`).
        let id = lastID.wrappingAdd(1, ordering: .relaxed).newValue
        let cancel: @Sendable () -> Void = { [weak self] in self?.post(.cancel(id: id)) }
        let body = UpstreamBody(handoff: UpstreamBody.Handoff(
            window: request.window, counters: counters,
            resume: { [weak self] in self?.post(.resume(id: id)) }, cancel: cancel))
        return PreparedTransfer(id: id, request: request, body: body, cancel: cancel)
    }

    @inline(never)
    private func start(_ transfer: PreparedTransfer, head: UnsafeContinuation<UpstreamStream, any Error>) {
        let sink = TransferSink(head: { head.resume(with: $0) }, body: transfer.body, cancel: transfer.cancel,
                                counters: counters)
        post(.add(id: transfer.id, request: transfer.request, sink: sink), orFail: sink)
    }

    /// Whether a transfer in flight to `origin` (`http://host:port/`) received bytes at or after `since`: what a
    /// health probe that timed out asks, since an instance whose answers are arriving is busy, not dead. Scans
    /// the transfers on the curl thread (once per timed-out probe, nothing on the request path); false once the
    /// loop is stopping.
    func received(from origin: String, since: ContinuousClock.Instant) async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let reply: @Sendable (Bool) -> Void = { continuation.resume(returning: $0) }
            if !enqueue(.received(origin: origin, since: since, reply: reply)) { reply(false) }
        }
    }

    private func post(_ command: Command, orFail sink: TransferSink) {
        if !enqueue(command) {
            Self.fail(sink, UpstreamError(kind: .invalidRequest, url: "", detail: "the client is shut down"))
        }
    }

    private func post(_ command: Command) {
        _ = enqueue(command)
    }

    /// Queues a command, waking the loop if it sleeps; false once stopping.
    private func enqueue(_ command: Command) -> Bool {
        let (queued, wake) = inbox.withLock { inbox in
            guard !inbox.stopping else { return (false, false) }
            inbox.commands.append(command)
            let wake = inbox.sleeping
            inbox.sleeping = false
            return (true, wake)
        }
        if wake { signal() }
        return queued
    }

    /// Wakes the loop thread.
    private func signal() {
        var one: UInt64 = 1
        _ = Glibc.write(wakeup, &one, MemoryLayout<UInt64>.size)
    }

    /// Runs the loop on a new thread until `stop()`; returns when the thread has cleaned up every handle.
    func run() async {
        guard unusable == nil, !started.exchange(true, ordering: .relaxed) else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            finished.withLock { $0 = continuation }
            let thread = Thread { [self] in
                nameCurrentThread("fleet-curl")
                self.loop()
            }
            thread.start()
        }
    }

    /// Asks the loop to finish: transfers in flight fail with `cancelled`, handles are cleaned up.
    func stop() {
        let first = inbox.withLock { inbox in
            defer { inbox.stopping = true }
            return !inbox.stopping
        }
        if first, unusable == nil { signal() }
    }

    /// Commands the loop will not run (it stops): a waiting `execute()` fails, a waiting question gets `false`.
    private static func answerUnrun(_ commands: [Command]) {
        for command in commands {
            switch command {
            case .add(_, _, let sink): fail(sink, CancellationError())
            case .received(_, _, let reply): reply(false)
            case .cancel, .resume: break
            }
        }
    }

    /// A transfer that never started: whoever waits for its head learns why.
    private static func fail(_ sink: TransferSink, _ error: any Error) {
        sink.head(.failure(error))
        sink.body.handoff.finish(error)
    }

    // MARK: - The loop thread

    private func loop() {
        var transfers: [UInt64: CurlTransfer] = [:]
        var byHandle: [UnsafeMutableRawPointer: UInt64] = [:]
        var stillRunning: Int32 = 0
        let watch = CurlSocketWatch(epoll: epoll)
        watch.attach(to: multi.pointer)
        watch.watch(wakeup)
        var cancelledEarly: Set<UInt64> = []
        var lastAdded: UInt64 = 0
        var lastDeadlineScan = ContinuousClock.now
        var watched = 0  // transfers with a deadline
        var unbatched = 0  // transfers that are not `batched` streams
        let handles = CurlEasyHandles()
        let relayFlushes = CurlRelayFlushes()
        let pass = CurlPass()
        // The sockets epoll reported in the last wait, with their `CURL_CSELECT_*` bits.
        var ready: [(Int32, Int32)] = []
        // The commands being run; swapped with the inbox's (empty) array, so neither allocates anew.
        var commands: [Command] = []
        // When the streams' linger ends (`lingerMilliseconds` after the pass that began it), while one is under way.
        var lingeringUntil: ContinuousClock.Instant?

        func remove(_ id: UInt64) -> CurlTransfer? {
            guard let transfer = transfers.removeValue(forKey: id) else { return nil }
            counters.opened(-1)
            if transfer.hasDeadline { watched -= 1 }
            if !transfer.batched { unbatched -= 1 }
            byHandle[transfer.easy] = nil
            curl_multi_remove_handle(multi.pointer, transfer.easy)
            return transfer
        }

        while true {
            let now = pass.tick()
            commands.removeAll(keepingCapacity: true)
            let stopping = inbox.withLock { inbox in
                swap(&inbox.commands, &commands)
                inbox.sleeping = false
                return inbox.stopping
            }
            if stopping {
                // Commands taken in the same breath as the stop still get an answer: a waiting execute()
                // must never be left suspended.
                Self.answerUnrun(commands)
                break
            }
            for command in commands {
                switch command {
                case .add(let id, let request, let sink):
                    if cancelledEarly.remove(id) != nil {
                        Self.fail(sink, CancellationError())
                        continue
                    }
                    lastAdded = max(lastAdded, id)
                    do {
                        let transfer = try CurlTransfer(request: request, sink: sink, handles: handles, relayFlushes: relayFlushes,
                                                          pass: pass)
                        transfers[id] = transfer
                        counters.opened(1)
                        if transfer.hasDeadline { watched += 1 }
                        if !transfer.batched { unbatched += 1 }
                        byHandle[transfer.easy] = id
                        curl_multi_add_handle(multi.pointer, transfer.easy)
                    } catch {
                        Self.fail(sink, error)
                    }
                case .cancel(let id):
                    if let transfer = remove(id) {
                        transfer.finish(throwing: CancellationError())
                    } else if id > lastAdded {
                        // Cancelled before its add was processed (the two race through the inbox).
                        cancelledEarly.insert(id)
                    }
                case .resume(let id):
                    transfers[id]?.resume()
                case .received(let origin, let since, let reply):
                    reply(transfers.values.contains { $0.received(from: origin, since: since) })
                }
            }

            // What is due: curl's timer (it also runs transfers just added or resumed), then the ready sockets.
            if watch.takeDueTimer(at: now) {
                curl_multi_socket_action(multi.pointer, CURL_SOCKET_TIMEOUT, 0, &stillRunning)
            }
            for (socket, bits) in ready {
                curl_multi_socket_action(multi.pointer, socket, bits, &stillRunning)
            }
            ready.removeAll(keepingCapacity: true)
            // What this pass read for relayed streams goes to their connections: once per stream and pass.
            let relayed = relayFlushes.flush()
            var queued: Int32 = 0
            while let message = curl_multi_info_read(multi.pointer, &queued) {
                guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle,
                      let id = byHandle[easy] else { continue }
                let result = message.pointee.data.result
                if let transfer = remove(id) {
                    transfer.complete(result)
                }
            }
            // Idle and first-byte timeouts are the loop's to enforce (curl's low-speed check averages over
            // windows and does not see a stream that stalls between tokens; a timer task per request would cost
            // more than a scan). Checked a few times a second, only while some transfer has one.
            var wait: Duration = .seconds(10)
            if watched > 0 {
                wait = .milliseconds(250)
                if now - lastDeadlineScan >= .milliseconds(200) {
                    lastDeadlineScan = now
                    for (id, transfer) in transfers where transfer.missedDeadline(at: now) {
                        remove(id)?.failDeadline()
                    }
                }
            }
            // Waits only with nothing queued; a command queued after this look wakes it.
            let idle = inbox.withLock { inbox in
                inbox.sleeping = inbox.commands.isEmpty && !inbox.stopping
                return inbox.sleeping
            }
            // Under load, streams' next tokens are let gather before the next read: a loop this quick otherwise
            // reads each token as it comes and wakes its connection's loop for it (docs/benchmarks.md, eighth and
            // ninth passes). Long while only streams are in flight, brief beside a plain answer. Commands that come
            // during the long one run at once, in passes that read no socket (a new request is sent, a paused
            // transfer resumes, a cancelled one closes); the sockets are read when it ends (thirteenth pass).
            if lingeringUntil != nil, !Self.lingerGoesOn(transfers: transfers.count, unbatched: unbatched) {
                lingeringUntil = nil  // a plain answer came, or the streams thinned out
            }
            if lingeringUntil == nil,
               let linger = Self.linger(relayed: relayed, transfers: transfers.count, unbatched: unbatched, commandsQueued: !idle) {
                switch linger {
                case .streams: lingeringUntil = now + .milliseconds(Int(Self.lingerMilliseconds))
                case .brief: usleep(Self.briefLingerMicroseconds)
                }
            }
            if let until = lingeringUntil {
                if !idle || Self.waitForCommand(until: until, watching: wakeup) { continue }
                lingeringUntil = nil
            }
            watch.wait(atMost: idle ? wait : .zero) { descriptor, bits in
                if descriptor == wakeup {
                    var count: UInt64 = 0
                    _ = Glibc.read(wakeup, &count, MemoryLayout<UInt64>.size)
                } else {
                    ready.append((descriptor, bits))
                }
            }
        }

        for id in Array(transfers.keys) {
            remove(id)?.finish(throwing: CancellationError())
        }
        Self.answerUnrun(inbox.withLock { $0.commands })
        curl_multi_cleanup(multi.pointer)
        finished.withLock { continuation in
            continuation?.resume()
            continuation = nil
        }
    }
}

extension CurlEventLoop {
    enum Linger: Equatable {
        /// Every transfer is a stream: `lingerMilliseconds`, ended by a command.
        case streams
        /// A plain answer is in flight too: `briefLingerMicroseconds`.
        case brief
    }

    /// How the loop lingers after a pass, if at all: only when it relayed streams' bytes, `lingerFrom` transfers
    /// or more are in flight and no command waits; long when every transfer is a `batched` stream, else brief.
    static func linger(relayed: Int, transfers: Int, unbatched: Int, commandsQueued: Bool) -> Linger? {
        guard relayed > 0, transfers >= lingerFrom, !commandsQueued else { return nil }
        return lingerGoesOn(transfers: transfers, unbatched: unbatched) ? .streams : .brief
    }

    /// Whether the streams' (long) linger applies: every transfer is a stream and there are `lingerFrom` of them.
    /// Also what keeps one under way going after each pass.
    static func lingerGoesOn(transfers: Int, unbatched: Int) -> Bool {
        unbatched == 0 && transfers >= lingerFrom
    }

    /// Waits until `deadline`, or until `wakeup` is written (a command came): then reads it and returns true.
    private static func waitForCommand(until deadline: ContinuousClock.Instant, watching wakeup: Int32) -> Bool {
        let (seconds, attoseconds) = (deadline - .now).components
        // poll counts whole milliseconds: what is left is rounded to the nearest, so a linger that commands
        // interrupt ends within half a millisecond of its deadline (less than half a millisecond left ends it).
        let milliseconds = Int32(clamping: seconds * 1000 + (attoseconds + 500_000_000_000_000) / 1_000_000_000_000_000)
        guard milliseconds > 0 else { return false }
        var descriptor = pollfd(fd: wakeup, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, milliseconds) > 0 else { return false }
        var count: UInt64 = 0
        _ = Glibc.read(wakeup, &count, MemoryLayout<UInt64>.size)
        return true
    }
}
