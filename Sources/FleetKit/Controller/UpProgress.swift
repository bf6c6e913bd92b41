/// Turns instance events into the lines `fleet up` prints while models load, and the summary once every
/// instance has settled (ready or failed). Pure: feed it events, print what it returns.
public struct UpProgress: Sendable {
    private let total: Int
    private let url: String
    private var latest: [InstanceID: InstanceState] = [:]
    private var summarized = false

    public init(total: Int, url: String) {
        self.total = total
        self.url = url
    }

    public mutating func handle(_ event: InstanceEvent) -> [String] {
        latest[event.id] = event.state
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
        if let detail = event.detail { line += " — \(detail)" }
        var lines = [line]
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

    static func format(_ duration: Duration) -> String {
        let seconds = duration.seconds
        return seconds < 10 ? String(format: "%.1fs", seconds) : "\(Int(seconds.rounded()))s"
    }
}

import Foundation
