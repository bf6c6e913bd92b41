public import Foundation
public import FleetCore

/// Renders a `FleetStatus` as the table `fleet status` prints.
public enum StatusTable {
    public static func render(_ status: FleetStatus, now: Date = Date()) -> String {
        var lines: [String] = []
        let c = status.controller
        lines.append("fleet \(c.version) at \(c.url) (pid \(c.pid), up \(duration(now.timeIntervalSince(c.startedAt)))) — \(status.readyCount)/\(status.instances.count) instances ready")
        lines.append("config: \(c.config)")
        lines.append("llama-server: \(c.llamaServer)" + (c.llamaServerVersion.map { ", \($0)" } ?? ", version unknown"))
        if let memory = status.memory {
            lines.append("memory: \(memory.inUse.formattedBytes) of \(memory.budget.formattedBytes) budget in use (estimated)")
        }
        for model in status.models {
            let aliases = model.aliases.isEmpty ? "" : " (\(model.aliases.joined(separator: ", ")))"
            var details = [model.policy, "\(model.queueDepth) queued"]
            if model.start == "onDemand" { details.append("starts on demand") }
            if let idle = model.idleTimeoutSeconds { details.append("stops after \(duration(idle)) idle") }
            if let cache = model.promptCache, let ratio = cache.hitRatio {
                details.append("prompt cache \(percent(ratio)) hit (\(cache.cachedTokens) of \(cache.promptTokens) tokens)")
            }
            lines.append("model \(model.name)\(aliases): \(details.joined(separator: ", "))")
            for source in model.discovery ?? [] {
                var line = "  discovers \(source.source): \(source.members.count) member(s)"
                if let error = source.error { line += "; the last lookup failed, the last members found serve on: \(error)" }
                lines.append(line)
            }
        }
        lines.append("")
        let header = ["MODEL", "INSTANCE", "PORT", "PID", "STATE", "UPTIME", "RESTARTS", "LOAD", "SERVED", "ERRORS",
                      "LAST", "TOK/S", "CACHE", "LAST ERROR"]
        var rows = [header]
        for instance in status.instances {
            let traffic = instance.traffic
            rows.append([
                instance.model,
                instance.id,
                instance.port.map(String.init) ?? "-",
                instance.pid.map(String.init) ?? (instance.managed ? "-" : "remote"),
                instance.state.rawValue + (traffic.map { $0.inRotation || instance.state != .ready ? "" : " (out)" } ?? ""),
                instance.readySince.map { duration(now.timeIntervalSince($0)) } ?? "-",
                String(instance.restarts),
                traffic.map { "\($0.inFlight)/\($0.capacity)" } ?? "-",
                traffic.map { String($0.served) } ?? "-",
                traffic.map { String($0.errors) } ?? "-",
                traffic?.lastLatencyMs.map { "\(Int($0.rounded()))ms" } ?? "-",
                traffic?.lastTokensPerSecond.map { String(format: "%.1f", $0) } ?? "-",
                traffic?.promptCache?.hitRatio.map(percent) ?? "-",
                instance.lastError.map { String($0.prefix(80)) } ?? "",
            ])
        }
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            let cells = row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }
            lines.append(cells.joined(separator: "  ").trimmingCharacters(in: .whitespaces))
        }
        return lines.joined(separator: "\n")
    }

    /// `87%`: a prompt-cache hit ratio.
    static func percent(_ ratio: Double) -> String { "\(Int((ratio * 100).rounded()))%" }

    /// `42s`, `3m12s`, `2h05m`, `3d04h`.
    public static func duration(_ seconds: TimeInterval) -> String {
        let s = max(0, Int(seconds))
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
        if s < 86400 { return "\(s / 3600)h\(String(format: "%02d", (s % 3600) / 60))m" }
        return "\(s / 86400)d\(String(format: "%02d", (s % 86400) / 3600))h"
    }
}
