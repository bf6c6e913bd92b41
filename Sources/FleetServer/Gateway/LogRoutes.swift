import Foundation
public import Hummingbird
import NIOCore
import FleetConfig
import ServiceLifecycle
public import FleetSupervision
import FleetCore

/// `GET /logs/{model}[/{replica}]`: instances' captured output for `fleet logs`, read from their log files
/// (`LogFile`) through the controller, so it works from another machine too.
public struct LogRoutes: Sendable {
    let supervisor: Supervisor

    public init(supervisor: Supervisor) {
        self.supervisor = supervisor
    }

    public func register(on router: Router<some RequestContext>) {
        router.get("/logs/:model") { request, context in
            await logs(request, model: context.parameters.get("model") ?? "", replica: nil)
        }
        router.get("/logs/:model/:replica") { request, context in
            await logs(request, model: context.parameters.get("model") ?? "",
                       replica: context.parameters.get("replica").flatMap { Int($0) } ?? -1)
        }
    }

    /// `GET /logs/{model}[/{replica}]?lines=N&follow=1`: the last lines of a replica's log (its newest process
    /// generation), then, with `follow`, what it writes next — across hot swaps and restarts — until the client
    /// goes or the controller shuts down. A model with one replica needs no replica number.
    func logs(_ request: Request, model: String, replica: Int?) async -> Response {
        let query = request.uri.queryParameters
        let count = query.get("lines").flatMap { Int($0) }.map { min(max($0, 0), 100_000) } ?? 100
        let follow = ["1", "true", "yes"].contains(query.get("follow")?.lowercased() ?? "")
        let statuses = await supervisor.statuses().filter { $0.model == model && $0.managed }
        guard !statuses.isEmpty else {
            let known = await supervisor.currentModels().map(\.name)
            return json(["error": "no model \"\(model)\" runs here; models: \(known.joined(separator: ", "))"], status: .notFound)
        }
        let replicas = Set(statuses.map(\.replica)).sorted()
        guard let chosen = replica ?? (replicas.count == 1 ? replicas[0] : nil) else {
            let names = replicas.map { InstanceID.label(model: model, replica: $0) }.joined(separator: ", ")
            return json(["error": "model \"\(model)\" has \(replicas.count) replicas (\(names)); name one, e.g. /logs/\(model)/\(replicas[0])"],
                        status: .badRequest)
        }
        guard replicas.contains(chosen) else {
            return json(["error": "model \"\(model)\" has no replica \(chosen); it has \(replicas.map(String.init).joined(separator: ", "))"],
                        status: .notFound)
        }
        let supervisor = self.supervisor
        @Sendable func currentFile() async -> String? {
            await supervisor.statuses().last { $0.model == model && $0.replica == chosen && $0.managed }?.logFile
        }
        guard let path = await currentFile() else { return json(["error": "that replica is gone"], status: .notFound) }
        let (lines, end) = LogFile.tail(path: path, lines: count) ?? ([], 0)
        let head = ByteBuffer(string: lines.map { $0 + "\n" }.joined())
        let headers: HTTPFields = [.contentType: "text/plain; charset=utf-8", .cacheControl: "no-cache"]
        guard follow else { return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: head)) }
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            try await writer.write(head)
            var file = path
            var position = end
            // Ends with the controller's graceful shutdown (checked each tick), so a follower never holds it up.
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                if let newest = await currentFile(), newest != file {
                    // A hot swap or a restart wrote a new file: finish the old one, go on with the new.
                    let rest = LogFile.read(path: file, from: position).data
                    if !rest.isEmpty { try await writer.write(ByteBuffer(bytes: rest)) }
                    try await writer.write(ByteBuffer(string: "--- fleet: now following \((newest as NSString).lastPathComponent) ---\n"))
                    file = newest
                    position = 0
                }
                let (data, next) = LogFile.read(path: file, from: position)
                position = next
                if !data.isEmpty { try await writer.write(ByteBuffer(bytes: data)) }
                try await Task.sleep(for: .milliseconds(250))
            }
            try await writer.finish(nil)
        })
    }
}
