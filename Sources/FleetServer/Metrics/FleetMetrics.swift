import CoreMetrics
import Foundation
public import Prometheus
import Synchronization
public import FleetCore

/// The controller's Prometheus metrics (`GET /metrics`). Events on the request path (requests by status,
/// durations, time to first token, tokens generated) and instance restarts are recorded through swift-metrics,
/// backed by this controller's own swift-prometheus registry (never the process-wide bootstrap, so several
/// controllers in one process — the tests — keep their numbers apart). Levels (in-flight, queue depth, instance
/// state, memory, the controller process) are read when scraped.
public final class FleetMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    /// Scrape-time gauges set by the last scrape, so those whose instance or model is gone are unregistered.
    private let levels = Mutex<[String: Prometheus.Gauge]>([:])

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Completions take from milliseconds (a cached prompt, one token) to minutes (long generations).
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
            .seconds(30), .seconds(60), .seconds(120), .seconds(300),
        ]
        self.factory = factory
    }

    // MARK: - Events

    /// A completion request answered by an instance (`instance` is its replica id, e.g. `gemma/0`, or an
    /// endpoint's URL) or refused by the gateway (`instance` empty: queue full, queue timeout, every attempt
    /// failed). `status` is what the client got.
    public func request(model: String, instance: String, status: Int, duration: Duration, firstByte: Duration?,
                        tokens: Int?, promptCache: PromptCacheCounts? = nil) {
        let tokens = tokens.flatMap { $0 > 0 ? $0 : nil }
        let promptCache = promptCache.flatMap { $0.promptTokens > 0 ? $0 : nil }
        let series = answerSeries(Answers(model: model, instance: instance, status: status), firstToken: firstByte != nil,
                                  tokens: tokens != nil, promptCache: promptCache != nil)
        series.requests.increment()
        series.duration.recordNanoseconds(duration.nanoseconds)
        if let firstByte { series.firstToken?.recordNanoseconds(firstByte.nanoseconds) }
        if let tokens { series.tokens?.increment(by: tokens) }
        if let promptCache {
            series.promptTokens?.increment(by: promptCache.promptTokens)
            series.cachedTokens?.increment(by: promptCache.cachedTokens)
        }
    }

    /// Which answers a set of series counts.
    private struct Answers: Hashable {
        var model: String
        var instance: String
        var status: Int
    }

    /// The series an answer moves, found with one lookup per request, not one per series. Each is made (through
    /// the factory, a registry lookup with its label arrays) the first time an answer moves it, so a series shows
    /// in `/metrics` only once it has counted something, as before.
    private struct AnswerSeries {
        let requests: CoreMetrics.Counter
        let duration: CoreMetrics.Timer
        var firstToken: CoreMetrics.Timer?
        var tokens: CoreMetrics.Counter?
        var promptTokens: CoreMetrics.Counter?
        var cachedTokens: CoreMetrics.Counter?
    }

    private let answers = Mutex<[Answers: AnswerSeries]>([:])

    private func answerSeries(_ key: Answers, firstToken: Bool, tokens: Bool, promptCache: Bool) -> AnswerSeries {
        answers.withLock { answers in
            if let series = answers[key], !firstToken || series.firstToken != nil, !tokens || series.tokens != nil,
               !promptCache || series.promptTokens != nil {
                return series
            }
            let labels = [("model", key.model), ("instance", key.instance)]
            func counter(_ name: String, _ labels: [(String, String)]) -> CoreMetrics.Counter {
                CoreMetrics.Counter(label: name, dimensions: labels, factory: factory)
            }
            func timer(_ name: String) -> CoreMetrics.Timer {
                CoreMetrics.Timer(label: name, dimensions: [("model", key.model)], factory: factory)
            }
            var series = answers[key] ?? AnswerSeries(
                requests: counter("fleet_requests_total", labels + [("status", String(key.status))]),
                duration: timer("fleet_request_duration_seconds"))
            if firstToken, series.firstToken == nil { series.firstToken = timer("fleet_time_to_first_token_seconds") }
            if tokens, series.tokens == nil { series.tokens = counter("fleet_tokens_generated_total", labels) }
            if promptCache, series.promptTokens == nil {
                series.promptTokens = counter("fleet_prompt_tokens_total", labels)
                series.cachedTokens = counter("fleet_prompt_cached_tokens_total", labels)
            }
            answers[key] = series
            return series
        }
    }

    /// Counts crash restarts (an instance leaving `unhealthy` to start again) and failures.
    public func instanceChanged(_ event: InstanceEvent) {
        let labels = [("model", event.id.model), ("instance", event.id.description)]
        if event.previous == .unhealthy && event.state == .starting {
            CoreMetrics.Counter(label: "fleet_instance_restarts_total", dimensions: labels, factory: factory).increment()
        }
    }

    // MARK: - Scrape

    /// The Prometheus text exposition of everything, with the levels read from `status` now.
    public func render(_ status: FleetStatus) -> String {
        levels.withLock { gauges in
            var seen: Set<String> = []
            func set(_ name: String, _ help: String, _ labels: [(String, String)], _ value: Double) {
                let key = name + "|" + labels.map { "\($0.0)=\($0.1)" }.joined(separator: ",")
                seen.insert(key)
                let gauge = gauges[key] ?? registry.makeGauge(
                    descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
                gauges[key] = gauge
                gauge.set(value)
            }

            for instance in status.instances {
                let labels = [("model", instance.model), ("instance", instance.managed ? InstanceID.label(model: instance.model, replica: instance.replica) : instance.id)]
                // A replica shows twice during a hot swap (two generations): the newest one speaks for it.
                for state in InstanceState.allCases {
                    set("fleet_instance_state", "1 for the state each instance is in (idle, starting, ready, unhealthy, stopping, stopped, failed)",
                        labels + [("state", state.rawValue)], instance.state == state ? 1 : 0)
                }
                if let traffic = instance.traffic {
                    set("fleet_requests_in_flight", "requests an instance is serving now", labels, Double(traffic.inFlight))
                    set("fleet_instance_slots", "requests an instance serves at once (llama-server slots)", labels, Double(traffic.capacity))
                }
            }
            for model in status.models {
                set("fleet_queue_depth", "requests waiting for a free slot of the model", [("model", model.name)], Double(model.queueDepth))
                if let ratio = model.promptCache?.hitRatio {
                    set("fleet_prompt_cache_hit_ratio", "prompt tokens llama-server reused from its cache / all prompt tokens, over the model's answers since start",
                        [("model", model.name)], ratio)
                }
            }
            if let upstream = status.upstream {
                set("fleet_upstream_transfers", "transfers to instances and endpoints in flight", [], Double(upstream.transfers))
                set("fleet_upstream_paused_transfers", "transfers paused because their client does not read (each holds at most its window)",
                    [], Double(upstream.paused))
                set("fleet_upstream_buffered_bytes", "bytes received from upstreams not yet taken for their clients", [],
                    Double(upstream.bufferedBytes))
            }
            if let connections = status.connections {
                set("fleet_connections_open", "client connections open on the controller's listen address", [], Double(connections.open))
                set("fleet_connections_evicted", "client connections closed to stay under gateway.maxConnections, since start", [],
                    Double(connections.evicted))
                set("fleet_connections_timed_out", "client connections closed for a stalled head or body or an idle keep-alive, since start",
                    [], Double(connections.timedOut))
            }
            if let memory = status.memory {
                set("fleet_memory_budget_bytes", "memoryBudget", [], Double(memory.budget))
                set("fleet_memory_in_use_bytes", "estimated memory of the running instances", [], Double(memory.inUse))
            }
            let process = ProcessStats.current()
            set("process_cpu_seconds_total", "controller CPU time (user and system)", [], process.cpuSeconds)
            set("process_resident_memory_bytes", "controller resident memory", [], Double(process.residentBytes))
            set("process_open_fds", "controller open file descriptors", [], Double(process.openFileDescriptors))
            set("process_start_time_seconds", "controller start time since the Unix epoch", [], status.controller.startedAt.timeIntervalSince1970)

            for (key, gauge) in gauges where !seen.contains(key) {
                registry.unregisterGauge(gauge)
                gauges[key] = nil
            }
            return registry.emitToString()
        }
    }
}

