import Foundation
import Logging
import Synchronization
public import FleetCore
import FleetConfig
import FleetUpstream

/// DNS discovery: each `discover` entry of a model is resolved on its interval (sooner when its records' TTL is
/// shorter, at most once a second). What it finds joins the model's pool like `endpoints` — health-checked,
/// balanced, failed over — and a member whose record disappears leaves rotation and goes once its requests in
/// flight are done. A lookup that fails keeps the last good set, and `/status` says why.
extension ModelRouter {
    /// Starts a resolver task for every `discover` entry of every routed model and stops those no model has any
    /// more (their members go with them).
    func updateDiscoverers() {
        let wanted = Dictionary(models.flatMap { model in
            model.discover.enumerated().map { (index, source) in ("\(model.name)#\(index) \(source)", (model.name, source)) }
        }, uniquingKeysWith: { first, _ in first })
        let stopped = discoverers.withLock { tasks -> Bool in
            var stopped = false
            for (key, task) in tasks where wanted[key] == nil {
                task.cancel()
                tasks[key] = nil
                stopped = true
            }
            for (key, (model, source)) in wanted where tasks[key] == nil {
                tasks[key] = Task { await self.discover(source, key: key, model: model) }
            }
            return stopped
        }
        if stopped {
            discovered.withLock { found in found = found.filter { wanted[$0.key] != nil } }
        }
    }

    /// The members every model's entries found now, by model name.
    func discoveredMembers() -> [String: [String]] {
        discovered.withLock { found in
            var members: [String: [String]] = [:]
            for (key, status) in found {
                let model = String(key.prefix { $0 != "#" })
                members[model, default: []] += status.members
            }
            return members
        }
    }

    /// The entries of `model`, in fleet.json's order, as `/status` shows them (nil when it has none).
    public func discoveryStatus(of model: String) -> [DiscoveryStatus]? {
        let entries = discovered.withLock { found in
            found.filter { $0.key.hasPrefix(model + "#") }
                .sorted { Int($0.key.dropFirst(model.count + 1).prefix { $0 != " " }) ?? 0 < Int($1.key.dropFirst(model.count + 1).prefix { $0 != " " }) ?? 0 }
                .map(\.value)
        }
        return entries.isEmpty ? nil : entries
    }

    private func discover(_ source: DiscoverySource, key: String, model: String) async {
        var logger = Logger(label: "fleet.discovery")
        logger[metadataKey: "model"] = "\(model)"
        logger[metadataKey: "source"] = "\(source)"
        discovered.withLock { $0[key] = $0[key] ?? DiscoveryStatus(source: source.description) }
        while !Task.isCancelled {
            var next = source.interval
            do {
                let found = switch source.kind {
                case .addresses(let name, let port): try await resolver.addresses(of: name, port: port)
                case .services(let name): try await resolver.services(of: name)
                }
                if Task.isCancelled { break }
                if let ttl = found.ttl { next = max(.seconds(1), min(next, ttl)) }
                let changed = discovered.withLock { all -> Bool in
                    let before = all[key]?.members
                    all[key] = DiscoveryStatus(source: source.description, members: found.urls, resolvedAt: Date(), error: nil)
                    return before != found.urls
                }
                if changed {
                    logger.info("discovered \(found.urls.count) members", metadata: ["members": "\(found.urls.joined(separator: " "))"])
                    updateWatchers()
                }
            } catch {
                if Task.isCancelled { break }
                // The last good set keeps serving; status says why it is not fresher.
                discovered.withLock { all in all[key]?.error = "\(error)" }
                logger.warning("lookup failed; keeping the last members found", metadata: ["error": "\(error)"])
                next = min(next, .seconds(2))
            }
            try? await Task.sleep(for: next)
        }
        discovered.withLock { $0[key] = nil }
        updateWatchers()
    }
}
