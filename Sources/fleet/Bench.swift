import ArgumentParser
import FleetClient
import FleetCore
import Foundation
import Synchronization

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load a running fleet with a repeatable workload and report latency, throughput and prompt-cache hits.",
        discussion: """
            Workloads: agent (sessions that resend a long, growing context turn after turn), chat (independent \
            short prompts), embeddings. Every prompt follows from --seed, so runs can be compared. --compare runs \
            the same workload once per routing policy (switched through the control API, restored afterwards) and \
            prints them side by side. See docs/benchmarks.md.
            Example: fleet bench -m gemma --workload agent --sessions 8 --turns 6 --compare roundRobin,prefixAware
            """
    )

    @OptionGroup var controller: ControllerOptions

    @Option(name: [.customShort("m"), .long], help: "The model (or alias) to load.")
    var model: String

    @Option(help: "agent, chat or embeddings.")
    var workload: String = "agent"

    @Option(help: "Agent: concurrent sessions. Chat/embeddings: with --turns, sends sessions × turns requests. (default: 4)")
    var sessions: Int?

    @Option(help: "Agent: turns per session. (default: 4)")
    var turns: Int?

    @Option(help: "Requests in flight at most (default: --sessions for agent, 4 otherwise).")
    var concurrency: Int?

    @Option(help: "Seconds after which no request starts (default for chat/embeddings without --sessions/--turns: 30).")
    var duration: Double?

    @Option(help: "Seed of every prompt and think time.")
    var seed: UInt64 = 1

    @Option(help: "max_tokens of each chat request.")
    var maxTokens: Int = 16

    @Option(help: "Agent: the longest pause between a session's turns, in seconds (each is uniform in 0...this).")
    var thinkTime: Double = 2

    @Option(help: "Agent: tokens in each session's system prompt (about 4 characters each).")
    var contextTokens: Int = 1200

    @Option(help: "Run once per routing policy, e.g. roundRobin,leastBusy,prefixAware, and compare.")
    var compare: String?

    @Flag(help: "Print the report as JSON (with --compare: {\"reports\": [...]}).")
    var json = false

    func validate() throws {
        guard BenchWorkload.Kind(rawValue: workload) != nil else {
            throw ValidationError("unknown workload \"\(workload)\": use agent, chat or embeddings")
        }
        for (name, value) in [("--sessions", sessions), ("--turns", turns), ("--concurrency", concurrency)] {
            if let value, value < 1 { throw ValidationError("\(name) must be at least 1") }
        }
        if let duration, duration <= 0 { throw ValidationError("--duration must be positive") }
        if maxTokens < 1 { throw ValidationError("--max-tokens must be at least 1") }
        if thinkTime < 0 { throw ValidationError("--think-time cannot be negative") }
        if contextTokens < 0 { throw ValidationError("--context-tokens cannot be negative") }
    }

    var plan: BenchPlan {
        let workload = BenchWorkload.Kind(rawValue: self.workload) ?? .agent
        let sessionCount = sessions ?? 4
        let turnCount = turns ?? 4
        let work = BenchWorkload(kind: workload, sessions: sessionCount, turns: turnCount, seed: seed,
                                 contextTokens: contextTokens, maxTokens: maxTokens,
                                 thinkTime: .milliseconds(Int64(thinkTime * 1000)))
        let counted = sessions != nil || turns != nil
        var plan = BenchPlan(model: model, workload: work,
                             concurrency: concurrency ?? (workload == .agent ? sessionCount : 4),
                             duration: duration.map { .milliseconds(Int64($0 * 1000)) })
        if workload != .agent {
            plan.requests = counted ? sessionCount * turnCount : nil
            if !counted && plan.duration == nil { plan.duration = .seconds(30) }
        }
        return plan
    }

    func run() async throws {
        let runner = BenchRunner(baseURL: controller.baseURL, apiKey: controller.key, plan: plan)
        let policies = compare?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let progress = ProgressLine()
        // Ctrl-C cancels the run instead of killing the process: the report of what finished is printed and,
        // with --compare, the original policy is put back.
        signal(SIGINT, SIG_IGN)
        let interrupt = DispatchSource.makeSignalSource(signal: SIGINT)
        let work = Task { () throws -> [BenchReport] in
            try await runner.checkModel()
            guard let policies else { return [try await runner.run(progress: progress.update)] }
            let comparison = BenchComparison(runner: runner, control: controller.client, policies: policies)
            return try await comparison.run(starting: { progress.start("policy \($0)") }, progress: progress.update)
        }
        interrupt.setEventHandler { work.cancel() }
        interrupt.resume()
        defer { interrupt.cancel() }
        let reports: [BenchReport]
        do {
            reports = try await work.value
        } catch {
            progress.finish()
            throw failure("\(error)")
        }
        progress.finish()
        if json {
            say(try BenchReport.json(reports))
        } else if policies != nil {
            say(BenchReport.comparisonTable(reports))
        } else if let report = reports.first {
            say(report.table)
        }
        if reports.contains(where: \.interrupted) { throw ExitCode(130) }
    }
}

/// The progress on standard error: one line redrawn in place on a terminal, a line every 5 seconds otherwise
/// (a log, a CI job).
final class ProgressLine: Sendable {
    private let interactive = isatty(STDERR_FILENO) == 1
    private let state = Mutex<(label: String, lastDrawn: ContinuousClock.Instant?, drawn: Bool)>(("", nil, false))

    func start(_ label: String) {
        finish()
        state.withLock { $0.label = label + ": " }
        if !interactive { write("\(label)\n") }
    }

    @Sendable func update(_ progress: BenchProgress) {
        let now = ContinuousClock.now
        let interval: Duration = interactive ? .milliseconds(100) : .seconds(5)
        let finished = progress.total.map { progress.done >= $0 } ?? false
        let label: String? = state.withLock { state in
            if let last = state.lastDrawn, now - last < interval, !finished { return nil }
            state.lastDrawn = now
            state.drawn = true
            return state.label
        }
        guard let label else { return }
        let total = progress.total.map { "/\($0)" } ?? ""
        let line = "\(label)\(progress.done)\(total) requests, \(progress.errors) errors, \(progress.elapsed.formatted) elapsed"
        write(interactive ? "\r\u{1B}[2K" + line : line + "\n")
    }

    /// Ends the line in place, so that what follows starts on a line of its own.
    func finish() {
        let drawn = state.withLock { state in
            defer { state.drawn = false; state.lastDrawn = nil }
            return state.drawn
        }
        if interactive && drawn { write("\n") }
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
