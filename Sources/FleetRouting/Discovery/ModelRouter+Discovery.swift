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
/// One `discover` entry of one model: the `index`-th of its list, as fleet.json writes it now (a reload that
/// changes it makes another entry, and a new lookup task).
struct DiscoveryEntry: Hashable, Sendable {
    var model: String
    var index: Int
    var source: DiscoverySource
}

extension ModelRouter {
    /// Starts a resolver task for every `discover` entry of every routed model and stops those no model has any
    /// more (their members go with them).
    func updateDiscoverers() {
        let wanted = Set(models.flatMap { model in
            model.discover.enumerated().map { DiscoveryEntry(model: model.name, index: $0.offset, source: $0.element) }
        })
        let stopped = discoverers.withLock { tasks -> Bool in
            var stopped = false
            for (entry, task) in tasks where !wanted.contains(entry) {
                task.cancel()
                tasks[entry] = nil
                stopped = true
            }
            for entry in wanted where tasks[entry] == nil {
                tasks[entry] = Task { await self.discover(entry) }
            }
            return stopped
        }
        if stopped {
            discovered.withLock { found in found = found.filter { wanted.contains($0.key) } }
        }
    }

    /// The members every model's entries found now, by model name.
    func discoveredMembers() -> [String: [String]] {
        discovered.withLock { found in
            Dictionary(found.map { ($0.key.model, $0.value.members) }, uniquingKeysWith: +)
        }
    }

    /// The entries of `model`, in fleet.json's order, as `/status` shows them (nil when it has none).
    public func discoveryStatus(of model: String) -> [DiscoveryStatus]? {
        let entries = discovered.withLock { found in
            found.filter { $0.key.model == model }.sorted { $0.key.index < $1.key.index }.map(\.value)
        }
        return entries.isEmpty ? nil : entries
    }

    private func discover(_ entry: DiscoveryEntry) async {
        let source = entry.source
        var logger = Logger(label: "fleet.discovery")
        logger[metadataKey: "model"] = "\(entry.model)"
        logger[metadataKey: "source"] = "\(source)"
        discovered.withLock { $0[entry] = $0[entry] ?? DiscoveryStatus(source: source.description) }
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
                    let before = all[entry]?.members
                    all[entry] = DiscoveryStatus(source: source.description, members: found.urls, resolvedAt: Date(), error: nil)
                    return before != found.urls
                }
                if changed {
                    logger.info("discovered \(found.urls.count) members", metadata: ["members": "\(found.urls.joined(separator: " "))"])
                    updateWatchers()
                }
            } catch {
                if Task.isCancelled { break }
                // The last good set keeps serving; status says why it is not fresher.
                discovered.withLock { all in all[entry]?.error = "\(error)" }
                logger.warning("lookup failed; keeping the last members found", metadata: ["error": "\(error)"])
                next = min(next, .seconds(2))
            }
            try? await Task.sleep(for: next)
        }
        discovered.withLock { $0[entry] = nil }
        updateWatchers()
    }
}
