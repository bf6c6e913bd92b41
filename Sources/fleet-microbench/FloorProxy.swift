import CCurl
import FleetCore
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

// The floor of fleet's design: a proxy built from the same parts as the gateway (swift-nio's HTTP/1 server, one
// libcurl multi handle on one thread) with nothing else. A request crosses two threads, the event loop that read it
// and the curl thread, and its answer comes back to that loop once. No routing, no JSON, no metrics, no async
// tasks. `scripts/bench.sh` measures its CPU per request beside the gateway's: what fleet spends above it is
// fleet's own.
//
// The routed floor (`routed-proxy`) is the same plus what fleet's architecture adds at the least: each request's
// task, an actor that hands out the upstream and takes it back, and the task's wake-ups for the answer's head and
// end. What fleet spends above that is the gateway's own work, not its threads.

/// The curl thread: takes jobs from its inbox, runs them on its multi handle (round-robin over the upstreams), and
/// hands each answer to the job's `deliver` on the curl thread: a streamed answer once per pass of the loop (what
/// curl read for it in that pass, in one part), any other whole at its end.
private final class FloorCurlThread: Sendable {
    struct Job: Sendable {
        var body: ByteBuffer
        var streamed: Bool
        /// Which upstream (an index into the URLs); nil: the next in turn.
        var upstream: Int?
        /// A part of the answer; `end` on the last call.
        var deliver: @Sendable (_ part: ByteBuffer, _ end: Bool) -> Void
    }

    /// Only the curl thread uses it, but for curl_multi_wakeup, which libcurl documents as callable from any thread.
    nonisolated(unsafe) private let multi: UnsafeMutableRawPointer
    private let inbox = Mutex<[Job]>([])
    private let urls: [String]

    init(urls: [String]) {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
        multi = curl_multi_init()!
        self.urls = urls
    }

    func submit(_ job: Job) {
        inbox.withLock { $0.append(job) }
        curl_multi_wakeup(multi)
    }

    func start() {
        Thread {
            // Named, so that scripts/bench.sh can tell this thread's CPU from the event loops'.
            nameCurrentThread("floor-curl")
            self.loop()
        }.start()
    }

    /// One transfer: the job and what arrived of its answer and is not delivered yet. Confined to the curl thread.
    final class Transfer {
        let job: Job
        var answer = ByteBuffer()
        /// Streamed transfers that received something in this pass.
        let received: (Transfer) -> Void
        init(job: Job, received: @escaping (Transfer) -> Void) {
            self.job = job
            self.received = received
        }

        func received(_ bytes: UnsafeRawBufferPointer) {
            if job.streamed, answer.readableBytes == 0 { received(self) }
            answer.writeBytes(bytes)
        }
    }

    private func loop() {
        let headers = curl_slist_append(curl_slist_append(nil, "Content-Type: application/json"), "Expect:")
        var free: [UnsafeMutableRawPointer] = []
        var running: [UnsafeMutableRawPointer: Transfer] = [:]
        var next = 0
        var receivedInPass: [Transfer] = []
        while true {
            for job in inbox.withLock({ jobs in defer { jobs.removeAll(keepingCapacity: true) }; return jobs }) {
                let easy = free.popLast() ?? curl_easy_init()!
                let transfer = Transfer(job: job) { receivedInPass.append($0) }
                running[easy] = transfer
                if let upstream = job.upstream {
                    _ = fleet_easy_setopt_string(easy, CURLOPT_URL, urls[upstream % urls.count])
                } else {
                    _ = fleet_easy_setopt_string(easy, CURLOPT_URL, urls[next % urls.count])
                    next &+= 1
                }
                _ = fleet_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
                _ = fleet_easy_setopt_long(easy, CURLOPT_TCP_NODELAY, 1)
                _ = fleet_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, headers)
                _ = fleet_easy_setopt_long(easy, CURLOPT_POSTFIELDSIZE, job.body.readableBytes)
                job.body.withUnsafeReadableBytes { bytes in
                    _ = fleet_easy_setopt_pointer(easy, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress))
                }
                _ = fleet_easy_setopt_callback(easy, CURLOPT_WRITEFUNCTION, floorWrite)
                _ = fleet_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, Unmanaged.passUnretained(transfer).toOpaque())
                curl_multi_add_handle(multi, easy)
            }
            var active: Int32 = 0
            curl_multi_perform(multi, &active)
            for transfer in receivedInPass where transfer.answer.readableBytes > 0 {
                transfer.job.deliver(transfer.answer, false)
                transfer.answer = ByteBuffer()
            }
            receivedInPass.removeAll(keepingCapacity: true)
            var left: Int32 = 0
            while let message = curl_multi_info_read(multi, &left) {
                guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle,
                      let transfer = running.removeValue(forKey: easy) else { continue }
                curl_multi_remove_handle(multi, easy)
                curl_easy_reset(easy)
                free.append(easy)
                transfer.job.deliver(transfer.answer, true)
            }
            curl_multi_poll(multi, nil, 0, 1000, nil)
        }
    }
}

private func floorWrite(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?) -> Int {
    guard let data, let context else { return 0 }
    Unmanaged<FloorCurlThread.Transfer>.fromOpaque(context).takeUnretainedValue()
        .received(UnsafeRawBufferPointer(start: data, count: size * count))
    return size * count
}

/// Hands each request to the curl thread; writes what comes back on the connection's loop: a whole answer with
/// its length, a streamed one in chunks as curl reads them. A request is taken as streamed when its body holds
/// `"stream":true` as the bench writes it: the floor reads no JSON.
private final class FloorProxyHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private static let streamFlag = Array(#""stream":true"#.utf8)
    private let curl: FloorCurlThread
    /// Set for the routed floor: each request goes through a task and this actor.
    private let router: FloorRouter?
    private var body = ByteBuffer()

    init(curl: FloorCurlThread, router: FloorRouter?) {
        self.curl = curl
        self.router = router
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            body.clear()
        case .body(var part):
            body.writeBuffer(&part)
        case .end:
            let streamed = body.readableBytesView.firstRange(of: Self.streamFlag) != nil
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            let loop = context.eventLoop
            let headSent = NIOLoopBoundBox(false, eventLoop: loop)
            let deliver: @Sendable (ByteBuffer, Bool) -> Void = { part, end in
                loop.execute {
                    let context = bound.value
                    if !headSent.value {
                        headSent.value = true
                        var headers = HTTPHeaders()
                        headers.add(name: "Content-Type", value: streamed ? "text/event-stream" : "application/json")
                        if !streamed { headers.add(name: "Content-Length", value: String(part.readableBytes)) }
                        context.write(NIOAny(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok,
                                                                                         headers: headers))), promise: nil)
                    }
                    if part.readableBytes > 0 { context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(part))), promise: nil) }
                    if end {
                        context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)), promise: nil)
                    } else {
                        context.flush()
                    }
                }
            }
            guard let router else {
                curl.submit(.init(body: body, streamed: streamed, deliver: deliver))
                return
            }
            // What fleet's architecture adds at the least: the request's own task, which takes an upstream from
            // the actor that owns the pool's state, wakes for the answer's head (where fleet decides whether to
            // fail over) and for its end, and gives the upstream back.
            let (curl, body) = (curl, body)
            Task {
                let upstream = await router.acquire()
                let end = FloorAnswerProgress()
                await withCheckedContinuation { (head: CheckedContinuation<Void, Never>) in
                    curl.submit(.init(body: body, streamed: streamed, upstream: upstream) { part, last in
                        deliver(part, last)
                        if end.firstPart() { head.resume() }
                        if last { end.reached() }
                    })
                }
                await end.wait()
                await router.release(upstream)
            }
        }
    }
}

/// The head and the end of a routed floor's answer (the end may come before its task waits for it).
private final class FloorAnswerProgress: Sendable {
    private let state = Mutex<(reached: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))
    private let partsSeen = Atomic<Int>(0)

    /// Whether this is the answer's first part (its head).
    func firstPart() -> Bool { partsSeen.wrappingAdd(1, ordering: .relaxed).oldValue == 0 }

    func reached() {
        let waiter = state.withLock { state in
            state.reached = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let reached = state.withLock { state in
                if !state.reached { state.waiter = continuation }
                return state.reached
            }
            if reached { continuation.resume() }
        }
    }
}

/// The routed floor's pool: the upstreams in turn, with the requests each has in flight (as fleet's model pool is
/// an actor, the one owner of its members' state).
actor FloorRouter {
    private var inFlight: [Int]
    private var next = 0

    init(upstreams: Int) { inFlight = Array(repeating: 0, count: upstreams) }

    func acquire() -> Int {
        let upstream = next % inFlight.count
        next &+= 1
        inFlight[upstream] += 1
        return upstream
    }

    func release(_ upstream: Int) { inFlight[upstream] -= 1 }
}

/// Proxies every request on 127.0.0.1:`port` to `upstreams` (URLs, in turn) until killed.
func serveFloorProxy(port: Int, upstreams: [String], routed: Bool = false) throws -> Never {
    let curl = FloorCurlThread(urls: upstreams)
    let router = routed ? FloorRouter(upstreams: upstreams.count) : nil
    curl.start()
    let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .serverChannelOption(.backlog, value: 256)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                try channel.pipeline.syncOperations.addHandler(FloorProxyHandler(curl: curl, router: router))
            }
        }
        .bind(host: "127.0.0.1", port: port).wait()
    print("floor proxy on 127.0.0.1:\(port) in front of \(upstreams.joined(separator: ", "))")
    try channel.closeFuture.wait()
    fatalError("the floor proxy's channel closed")
}
