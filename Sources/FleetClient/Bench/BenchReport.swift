import Foundation
import FleetCore

/// What a bench run measured, summed up: the document `fleet bench --json` prints (keys sorted, every key always
/// present, `null` where a figure does not apply) and the rows of its table. docs/benchmarks.md describes each key.
public struct BenchReport: Sendable, Codable, Equatable {
    /// The 50th, 90th and 99th percentiles of a set of durations, in milliseconds (nearest rank), over `count`.
    public struct Percentiles: Sendable, Codable, Equatable {
        public var p50: Double
        public var p90: Double
        public var p99: Double
        public var count: Int

        /// nil when `values` is empty.
        public init?(seconds values: [Double]) {
            guard !values.isEmpty else { return nil }
            let sorted = values.sorted()
            p50 = BenchReport.percentile(sorted, 50) * 1000
            p90 = BenchReport.percentile(sorted, 90) * 1000
            p99 = BenchReport.percentile(sorted, 99) * 1000
            count = values.count
        }
    }

    /// `agent`, `chat` or `embeddings`.
    public var workload: String
    public var model: String
    /// The routing policy the model had during the run, when `--compare` set it; nil otherwise.
    public var policy: String?
    public var seed: UInt64
    public var sessions: Int
    public var turns: Int
    public var concurrency: Int
    /// Ctrl-C stopped the run: the figures cover the requests that finished.
    public var interrupted: Bool
    /// Requests that finished (succeeded or failed).
    public var requests: Int
    /// Requests that failed: a status other than 200, an error event, a stream cut before `[DONE]`, no answer.
    public var errors: Int
    /// From the first request to the end of the last, in seconds.
    public var wallSeconds: Double
    /// Time to first token of the successful requests.
    public var ttftMs: Percentiles?
    /// Agent: time to first token of turns 2 and later, the ones a prompt cache can speed up.
    public var ttftLaterTurnsMs: Percentiles?
    /// End-to-end latency of the successful requests.
    public var latencyMs: Percentiles?
    /// Tokens generated, summed over the successful requests.
    public var completionTokens: Int
    /// `completionTokens / wallSeconds`.
    public var completionTokensPerSecond: Double
    /// Prompt tokens the servers took from their cache (Σ `cache_n`).
    public var cachedPromptTokens: Int
    /// Prompt tokens the servers processed anew (Σ `prompt_n`).
    public var processedPromptTokens: Int
    /// `cachedPromptTokens / (cachedPromptTokens + processedPromptTokens)`; nil when no answer reported them.
    public var cacheHitRatio: Double?
    /// Requests per instance (the gateway's `X-Fleet-Instance`; "?" when it sent none).
    public var instances: [String: Int]
    /// Agent: turns served by another instance than the session's turn before (both succeeded): each one is a
    /// prompt that instance most likely had to evaluate in full. nil for other workloads.
    public var sessionMoves: Int?
    /// The first few distinct error messages, to say what went wrong.
    public var firstErrors: [String]

    public init(plan: BenchPlan, policy: String?, samples: [BenchSample], wall: Duration, interrupted: Bool = false) {
        workload = plan.workload.kind.rawValue
        model = plan.model
        self.policy = policy
        seed = plan.workload.seed
        sessions = plan.workload.sessions
        turns = plan.workload.turns
        concurrency = plan.concurrency
        self.interrupted = interrupted
        requests = samples.count
        let good = samples.filter(\.succeeded)
        errors = samples.count - good.count
        wallSeconds = wall.seconds
        ttftMs = Percentiles(seconds: good.compactMap(\.timeToFirstToken))
        ttftLaterTurnsMs = plan.workload.kind == .agent
            ? Percentiles(seconds: good.filter { $0.turn >= 2 }.compactMap(\.timeToFirstToken)) : nil
        latencyMs = Percentiles(seconds: good.map(\.latency))
        completionTokens = good.compactMap(\.completionTokens).reduce(0, +)
        completionTokensPerSecond = wallSeconds > 0 ? Double(completionTokens) / wallSeconds : 0
        cachedPromptTokens = good.compactMap(\.cachedTokens).reduce(0, +)
        processedPromptTokens = good.compactMap(\.processedTokens).reduce(0, +)
        let promptTokens = cachedPromptTokens + processedPromptTokens
        cacheHitRatio = good.contains { $0.cachedTokens != nil } && promptTokens > 0
            ? Double(cachedPromptTokens) / Double(promptTokens) : nil
        instances = Dictionary(samples.map { ($0.instance, 1) }, uniquingKeysWith: +)
        if plan.workload.kind == .agent {
            let served = Dictionary(good.map { (SessionTurn(session: $0.session, turn: $0.turn), $0.instance) }, uniquingKeysWith: { a, _ in a })
            sessionMoves = good.filter { sample in
                sample.turn >= 2 && served[SessionTurn(session: sample.session, turn: sample.turn - 1)].map { $0 != sample.instance } == true
            }.count
        }
        var messages: [String] = []
        for case let message? in samples.map(\.error) where !messages.contains(message) && messages.count < 5 {
            messages.append(message)
        }
        firstErrors = messages
    }

    private struct SessionTurn: Hashable {
        var session: Int
        var turn: Int
    }

    /// The value at percentile `p` (0...100) of `sorted` by nearest rank: the smallest value with at least p% of
    /// the values at or below it.
    public static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }

    // Every key is written, null included, so that scripts can rely on the document's shape.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(workload, forKey: .workload)
        try container.encode(model, forKey: .model)
        try container.encode(policy, forKey: .policy)
        try container.encode(seed, forKey: .seed)
        try container.encode(sessions, forKey: .sessions)
        try container.encode(turns, forKey: .turns)
        try container.encode(concurrency, forKey: .concurrency)
        try container.encode(interrupted, forKey: .interrupted)
        try container.encode(requests, forKey: .requests)
        try container.encode(errors, forKey: .errors)
        try container.encode(wallSeconds, forKey: .wallSeconds)
        try container.encode(ttftMs, forKey: .ttftMs)
        try container.encode(ttftLaterTurnsMs, forKey: .ttftLaterTurnsMs)
        try container.encode(latencyMs, forKey: .latencyMs)
        try container.encode(completionTokens, forKey: .completionTokens)
        try container.encode(completionTokensPerSecond, forKey: .completionTokensPerSecond)
        try container.encode(cachedPromptTokens, forKey: .cachedPromptTokens)
        try container.encode(processedPromptTokens, forKey: .processedPromptTokens)
        try container.encode(cacheHitRatio, forKey: .cacheHitRatio)
        try container.encode(instances, forKey: .instances)
        try container.encode(sessionMoves, forKey: .sessionMoves)
        try container.encode(firstErrors, forKey: .firstErrors)
    }

    /// One report as JSON (keys sorted), or several (`--compare`) as `{"reports": [...]}`.
    public static func json(_ reports: [BenchReport]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        let data = reports.count == 1 ? try encoder.encode(reports[0]) : try encoder.encode(["reports": reports])
        return String(decoding: data, as: UTF8.self)
    }

    // MARK: Tables

    /// The report's figures as (label, value) rows, the same for one run and for a comparison.
    public var rows: [(label: String, value: String)] {
        func spread(_ p: Percentiles?) -> String {
            p.map { "\(Self.ms($0.p50)) / \(Self.ms($0.p90)) / \(Self.ms($0.p99))" } ?? "-"
        }
        var rows: [(String, String)] = [
            ("requests", "\(requests)" + (interrupted ? " (interrupted)" : "")),
            ("errors", "\(errors)"),
            ("TTFT p50/p90/p99", spread(ttftMs)),
        ]
        if workload == BenchWorkload.Kind.agent.rawValue { rows.append(("TTFT turns ≥ 2", spread(ttftLaterTurnsMs))) }
        rows += [
            ("latency p50/p90/p99", spread(latencyMs)),
            ("wall time", String(format: "%.1f s", wallSeconds)),
            ("completion tokens/s", String(format: "%.1f", completionTokensPerSecond)),
            ("prompt cache hits", cacheHitRatio.map {
                String(format: "%.1f%% ", $0 * 100) + "(\(cachedPromptTokens) of \(cachedPromptTokens + processedPromptTokens) tokens)"
            } ?? "-"),
            ("session moves", sessionMoves.map { "\($0) of \(max(0, requests - sessions)) later turns" } ?? "-"),
            ("requests per instance", instances.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")),
        ]
        return rows
    }

    /// The human summary of one run.
    public var table: String {
        var header = "fleet bench: \(workload) on \(model), seed \(seed)"
        if workload == BenchWorkload.Kind.agent.rawValue { header += ", \(sessions) sessions × \(turns) turns" }
        header += ", concurrency \(concurrency)" + (policy.map { ", policy \($0)" } ?? "")
        var lines = [header, ""] + Self.align(rows.map { [$0.label, $0.value] })
        if !firstErrors.isEmpty { lines += ["", "errors seen:"] + firstErrors.map { "  " + $0 } }
        return lines.joined(separator: "\n")
    }

    /// Several runs side by side: one row per figure, one column per policy.
    public static func comparisonTable(_ reports: [BenchReport]) -> String {
        guard let first = reports.first else { return "" }
        var header = "fleet bench --compare: \(first.workload) on \(first.model), seed \(first.seed)"
        if first.workload == BenchWorkload.Kind.agent.rawValue { header += ", \(first.sessions) sessions × \(first.turns) turns" }
        header += ", concurrency \(first.concurrency)"
        var table = [["metric"] + reports.map { $0.policy ?? "-" }]
        let columns = reports.map(\.rows)
        for (index, row) in first.rows.enumerated() {
            table.append([row.label] + columns.map { index < $0.count ? $0[index].value : "" })
        }
        var lines = [header, ""] + align(table)
        for report in reports where !report.firstErrors.isEmpty {
            lines += ["", "errors seen under \(report.policy ?? "-"):"] + report.firstErrors.map { "  " + $0 }
        }
        return lines.joined(separator: "\n")
    }

    static func ms(_ value: Double) -> String {
        value >= 100 ? String(format: "%.0f ms", value) : String(format: "%.1f ms", value)
    }

    /// Left-aligned columns two spaces apart.
    static func align(_ rows: [[String]]) -> [String] {
        let count = rows.map(\.count).max() ?? 0
        let widths = (0..<count).map { column in rows.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
    }
}
