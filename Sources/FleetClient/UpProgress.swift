public import FleetCore
/// Turns instance events into the lines `fleet up` prints while models load, and the summary once every
/// instance has settled (ready or failed). Pure: feed it events, print what it returns.
public struct UpProgress: Sendable {
    private let total: Int
    private let url: String
    private var latest: [InstanceID: InstanceState] = [:]
    private var summarized = false
    /// When each instance began its current start, and when a loading line was last printed for it.
    private var loadingSince: [InstanceID: ContinuousClock.Instant] = [:]
    private var lastLoadingLine: [InstanceID: ContinuousClock.Instant] = [:]
    /// How often a still-loading instance gets a line.
    public var loadingInterval: Duration = .seconds(5)

    public init(total: Int, url: String) {
        self.total = total
        self.url = url
    }

    public mutating func handle(_ event: InstanceEvent, now: ContinuousClock.Instant = .now) -> [String] {
        latest[event.id] = event.state
        if event.state == .starting {
            loadingSince[event.id] = now
            lastLoadingLine[event.id] = now
        } else {
            loadingSince[event.id] = nil
        }
        var line = "\(event.id.description.padding(toLength: 14, withPad: " ", startingAt: 0)) \(event.state.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0))"
        switch event.state {
        case .starting:
            line += event.port.map { " port \($0)" } ?? ""
        case .ready:
            line += event.sinceSpawn.map { " in \(Self.format($0))" } ?? ""
            line += event.port.map { " on port \($0)" } ?? ""
            line += event.pid.map { " (pid \($0))" } ?? ""
        default:
            break
        }
        if let detail = event.detail {
            // The one-line reason already quotes standard error; the lines below show it whole.
            let short = event.output.isEmpty ? detail : detail.components(separatedBy: "; last output:")[0]
            line += " — \(short)"
        }
        var lines = [line]
        lines += event.output.map { String(repeating: " ", count: 15) + "│ " + $0 }
        let ready = latest.values.filter { $0 == .ready }.count
        let failed = latest.values.filter { $0 == .failed }.count
        if !summarized && latest.count == total && ready + failed == total {
            summarized = true
            if failed == 0 {
                lines.append("fleet is ready: \(ready)/\(total) instances — gateway and status at \(url) (try `fleet status`)")
            } else {
                lines.append("fleet is up with \(failed) failed instance(s): \(ready)/\(total) ready at \(url); see `fleet status` for why")
            }
        }
        return lines
    }

    /// A line for each instance still loading, every `loadingInterval`: how long so far and, from `lastLine`,
    /// what llama-server last wrote (it reports its loading steps on standard error).
    public mutating func tick(now: ContinuousClock.Instant = .now, lastLine: (InstanceID) -> String?) -> [String] {
        var lines: [String] = []
        for (id, since) in loadingSince.sorted(by: { $0.key < $1.key }) {
            guard let last = lastLoadingLine[id], now - last >= loadingInterval else { continue }
            lastLoadingLine[id] = now
            var line = "\(id.description.padding(toLength: 14, withPad: " ", startingAt: 0)) loading   \(Self.format(now - since))"
            if let text = lastLine(id)?.trimmingCharacters(in: .whitespaces), !text.isEmpty {
                line += " — " + (text.count > 100 ? String(text.prefix(99)) + "…" : text)
            }
            lines.append(line)
        }
        return lines
    }

    static func format(_ duration: Duration) -> String {
        let seconds = duration.seconds
        return seconds < 10 ? String(format: "%.1fs", seconds) : "\(Int(seconds.rounded()))s"
    }
}

import Foundation
