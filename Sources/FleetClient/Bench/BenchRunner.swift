import Foundation
import NIOCore
import Synchronization
import FleetCore
import FleetUpstream

/// What to run: a workload against one model, how much of it at once, for how long.
public struct BenchPlan: Sendable {
    /// The model (or alias) every request names.
    public var model: String
    public var workload: BenchWorkload
    /// Requests in flight at most, over all sessions (agent) or workers (chat, embeddings).
    public var concurrency: Int
    /// No request starts after this long; nil: until the workload is done.
    public var duration: Duration?
    /// Chat and embeddings: how many requests in all; nil: until `duration`. Agent sessions run
    /// `workload.turns` turns each.
    public var requests: Int?
    /// The longest a single request may take.
    public var requestTimeout: Duration = .seconds(300)

    public init(model: String, workload: BenchWorkload, concurrency: Int, duration: Duration? = nil, requests: Int? = nil) {
        self.model = model
        self.workload = workload
        self.concurrency = max(1, concurrency)
        self.duration = duration
        self.requests = requests
    }

    /// The number of requests the run will send, when known in advance.
    public var total: Int? {
        workload.kind == .agent ? workload.sessions * workload.turns : requests
    }
}

/// Where a running bench is, for the progress line.
public struct BenchProgress: Sendable, Equatable {
    public var done: Int
    public var total: Int?
    public var errors: Int
    public var elapsed: Duration
}

/// Why a bench cannot run, in words that say what to do.
public enum BenchError: Error, CustomStringConvertible, Equatable {
    /// The gateway does not serve the model; `available` is what its `/v1/models` lists.
    case unknownModel(model: String, url: String, available: [String])
    /// The gateway's `/v1/models` answered something else than a model list.
    case badModelList(url: String, detail: String)

    public var description: String {
        switch self {
        case let .unknownModel(model, url, available):
            let list = available.isEmpty ? "none" : available.joined(separator: ", ")
            return "the fleet at \(url) serves no model \"\(model)\"; it serves: \(list) (pass one with -m)"
        case let .badModelList(url, detail):
            return "\(url)/v1/models did not answer as a fleet gateway: \(detail)"
        }
    }
}

/// Runs a `BenchPlan` against a fleet's gateway and measures every request (`BenchSample`), through the same
/// libcurl client as the rest of fleet. Chat requests are streamed; the first event with content times the
/// first token, the last event's `timings` give the prompt-cache figures, `X-Fleet-Instance` the instance.
public struct BenchRunner: Sendable {
    public let baseURL: String
    public let apiKey: String?
    public let plan: BenchPlan

    public init(baseURL: String, apiKey: String? = nil, plan: BenchPlan) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.apiKey = apiKey
        self.plan = plan
    }

    /// Checks that a gateway answers at `baseURL` and serves the plan's model.
    /// - Throws: `ControlClient.Unreachable` (nothing listens: start one with `fleet up`),
    ///   `ControlClient.Unauthorized`, `BenchError.unknownModel` (with the models it does serve).
    public func checkModel() async throws {
        let response: UpstreamResponse
        do {
            response = try await UpstreamClient.with { client in
                try await client.fetch(UpstreamRequest(url: baseURL + "/v1/models", headers: ControlClient.authorization(apiKey),
                                                       connectTimeout: .seconds(2), totalTimeout: .seconds(10)))
            }
        } catch let error as UpstreamError where error.kind == .connectFailed {
            throw ControlClient.Unreachable(url: baseURL)
        }
        if response.status == 401 || response.status == 403 {
            throw ControlClient.Unauthorized(url: baseURL, forbidden: response.status == 403)
        }
        guard response.status == 200,
              let json = try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any],
              let data = json["data"] as? [[String: Any]] else {
            throw BenchError.badModelList(url: baseURL, detail: "HTTP \(response.status): \(response.bodyText.prefix(200))")
        }
        let models = data.compactMap { $0["id"] as? String }
        guard models.contains(plan.model) else {
            throw BenchError.unknownModel(model: plan.model, url: baseURL, available: models)
        }
    }

    /// Runs the whole plan and returns its report. Ctrl-C (cancelling the task) stops it: the report then
    /// covers the requests that finished, and says it was interrupted.
    /// - Parameter progress: called after every request (from any task).
    public func run(policy: String? = nil, progress: @escaping @Sendable (BenchProgress) -> Void = { _ in }) async throws -> BenchReport {
        let recorder = BenchRecorder(total: plan.total, progress: progress)
        let started = ContinuousClock.now
        var interrupted = false
        do {
            try await UpstreamClient.with { client in
                switch plan.workload.kind {
                case .agent: try await runAgent(client, recorder: recorder, started: started)
                case .chat, .embeddings: try await runIndependent(client, recorder: recorder, started: started)
                }
            }
        } catch is CancellationError {
            interrupted = true
        }
        if Task.isCancelled { interrupted = true }
        return BenchReport(plan: plan, policy: policy, samples: recorder.samples, wall: ContinuousClock.now - started,
                           interrupted: interrupted)
    }

    private func expired(_ started: ContinuousClock.Instant) -> Bool {
        plan.duration.map { ContinuousClock.now - started >= $0 } ?? false
    }

    /// Each session is a task that sends its turns one after the other; a limiter keeps the requests in flight
    /// over all sessions within `concurrency`.
    private func runAgent(_ client: UpstreamClient, recorder: BenchRecorder, started: ContinuousClock.Instant) async throws {
        let workload = plan.workload
        let limiter = BenchLimiter(permits: plan.concurrency)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for session in 0..<workload.sessions {
                group.addTask {
                    var answers: [String] = []
                    for turn in 1...max(1, workload.turns) {
                        try await Task.sleep(for: workload.thinkTime(session: session, turn: turn))
                        if expired(started) { return }
                        let messages = workload.messages(session: session, turn: turn, answers: answers)
                        let sample = try await limiter.withPermit {
                            try await chat(client, messages: messages, session: session, turn: turn)
                        }
                        recorder.add(sample, started: started)
                        answers.append(sample.answer)
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// `concurrency` workers take the next request index until `requests` were sent or `duration` passed.
    private func runIndependent(_ client: UpstreamClient, recorder: BenchRecorder, started: ContinuousClock.Instant) async throws {
        let workload = plan.workload
        let limit = plan.requests ?? (plan.duration == nil ? workload.sessions * workload.turns : nil)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<plan.concurrency {
                group.addTask {
                    while true {
                        let index = recorder.nextIndex()
                        if let limit, index >= limit { return }
                        if expired(started) { return }
                        let sample = workload.kind == .embeddings
                            ? try await embed(client, input: workload.embeddingInput(index: index), index: index)
                            : try await chat(client, messages: [.init(role: "user", content: workload.chatPrompt(index: index))],
                                             session: index, turn: 1)
                        recorder.add(sample, started: started)
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    private func headers() -> [(name: String, value: String)] {
        [("Content-Type", "application/json")] + ControlClient.authorization(apiKey)
    }

    /// One streamed chat completion, measured. Failures become samples with an `error`; only cancellation throws.
    func chat(_ client: UpstreamClient, messages: [GatewayClient.Message], session: Int, turn: Int) async throws -> BenchSample {
        let json: [String: Any] = ["model": plan.model, "stream": true, "temperature": 0, "max_tokens": plan.workload.maxTokens,
                                   "messages": messages.map { ["role": $0.role, "content": $0.content] }]
        let body = Array(try JSONSerialization.data(withJSONObject: json))
        let start = ContinuousClock.now
        func seconds() -> Double { (ContinuousClock.now - start).seconds }
        var sample = BenchSample(session: session, turn: turn, status: 0, latency: 0)
        var reader = BenchAnswerReader()
        var firstEvent: Double?
        var firstContent: Double?
        do {
            let stream = try await client.execute(UpstreamRequest(method: "POST", url: baseURL + "/v1/chat/completions",
                                                                  headers: headers(), body: body, connectTimeout: .seconds(5),
                                                                  totalTimeout: plan.requestTimeout))
            sample.status = stream.status
            sample.instance = stream.header("x-fleet-instance") ?? "?"
            var framer = SSEFramer()
            var raw = ""
            for try await chunk in stream.body {
                if stream.status != 200 {
                    raw += String(buffer: chunk)
                    continue
                }
                for event in framer.feed(chunk) {
                    if firstEvent == nil { firstEvent = seconds() }
                    if reader.read(event: String(buffer: event)), firstContent == nil { firstContent = seconds() }
                }
            }
            if let rest = framer.flush() { reader.read(event: String(buffer: rest)) }
            if stream.status != 200 {
                sample.error = "HTTP \(stream.status): " + GatewayClient.errorMessage(raw)
            } else if let error = reader.error {
                sample.error = error
            } else if !reader.done {
                sample.error = "the stream ended before [DONE]"
            }
        } catch {
            if Task.isCancelled { throw CancellationError() }
            sample.error = "\(error)"
        }
        sample.latency = seconds()
        sample.timeToFirstToken = firstContent ?? firstEvent
        sample.answer = reader.text
        sample.completionTokens = reader.completionTokens
        sample.cachedTokens = reader.cachedTokens
        sample.processedTokens = reader.processedTokens
        return sample
    }

    /// One embeddings request, measured; its time to first token is the time to the response's head.
    func embed(_ client: UpstreamClient, input: String, index: Int) async throws -> BenchSample {
        let body = Array(try JSONSerialization.data(withJSONObject: ["model": plan.model, "input": input] as [String: Any]))
        let start = ContinuousClock.now
        var sample = BenchSample(session: index, turn: 1, status: 0, latency: 0)
        do {
            let stream = try await client.execute(UpstreamRequest(method: "POST", url: baseURL + "/v1/embeddings",
                                                                  headers: headers(), body: body, connectTimeout: .seconds(5),
                                                                  totalTimeout: plan.requestTimeout))
            sample.timeToFirstToken = (ContinuousClock.now - start).seconds
            sample.status = stream.status
            sample.instance = stream.header("x-fleet-instance") ?? "?"
            var text = ""
            for try await chunk in stream.body { text += String(buffer: chunk) }
            if stream.status != 200 {
                sample.error = "HTTP \(stream.status): " + GatewayClient.errorMessage(text)
            } else if let json = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] {
                sample.processedTokens = (json["usage"] as? [String: Any])?["prompt_tokens"] as? Int
                if json["data"] == nil { sample.error = "no data in the answer" }
            } else {
                sample.error = "the answer is not JSON"
            }
        } catch {
            if Task.isCancelled { throw CancellationError() }
            sample.error = "\(error)"
        }
        sample.latency = (ContinuousClock.now - start).seconds
        return sample
    }
}

/// The samples of a run, as they come in from its tasks, and the progress they make.
final class BenchRecorder: Sendable {
    private let state = Mutex<(samples: [BenchSample], errors: Int)>(([], 0))
    private let next = Mutex(0)
    private let total: Int?
    private let progress: @Sendable (BenchProgress) -> Void

    init(total: Int?, progress: @escaping @Sendable (BenchProgress) -> Void) {
        self.total = total
        self.progress = progress
    }

    func add(_ sample: BenchSample, started: ContinuousClock.Instant) {
        let (done, errors) = state.withLock { state -> (Int, Int) in
            state.samples.append(sample)
            if !sample.succeeded { state.errors += 1 }
            return (state.samples.count, state.errors)
        }
        progress(BenchProgress(done: done, total: total, errors: errors, elapsed: ContinuousClock.now - started))
    }

    var samples: [BenchSample] { state.withLock { $0.samples } }

    /// The next request index for a worker to send (chat and embeddings).
    func nextIndex() -> Int {
        next.withLock { value in
            defer { value += 1 }
            return value
        }
    }
}
