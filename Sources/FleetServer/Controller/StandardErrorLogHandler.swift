import Foundation
import FleetCore
public import Logging

/// Log lines on standard error, as swift-log's `StreamLogHandler` writes them
/// (`2026-12-06T02:43:26+0000 info fleet : key=value [FleetServer] message`), with one difference that matters
/// on the gateway's path: metadata is formatted when a line is written, not each time it is set.
/// `StreamLogHandler` formats all of a logger's metadata on every set, and Hummingbird sets a request id on
/// every request, most of which log nothing.
public struct StandardErrorLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String

    public init(label: String, level: Logger.Level, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.logLevel = level
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { _, new in new } }
        if let explicit = event.metadata { all.merge(explicit) { _, new in new } }
        let pretty = all.isEmpty ? "" : " " + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let line = "\(Self.timestamp()) \(event.level) \(label) :\(pretty) [\(event.source)] \(event.message)\n"
        FileHandle.standardError.write(Data(line.utf8))
    }

    private static func timestamp() -> String {
        CalendarText.format(Int(time(nil)), "%Y-%m-%dT%H:%M:%S%z", utc: false)
    }
}
