import Foundation
import Logging
import Synchronization
import FleetConfig
import FleetUpstream

/// A model another fleet serves: its canonical name and aliases, as that fleet's `/v1/models` lists them.
struct ImportedModel: Sendable, Equatable {
    var name: String
    var aliases: [String]
}

/// Fleets of fleets: each of fleet.json's `peers` is asked for its models (`GET /v1/models`, with the key fleet.json
/// gives for it) at start and every `refresh`. Its gateway joins the pool of every model it serves: one this fleet
/// also has gets it as one more member; any other is added, served by the peers that have it. Members are
/// unmanaged, health-checked and balanced like `endpoints`; the peer's key goes to that peer only.
extension ModelRouter {
    func startPeers() {
        peerTasks.withLock { tasks in
            for peer in config.peers where tasks[peer.url] == nil {
                tasks[peer.url] = Task { await self.follow(peer) }
            }
        }
    }

    /// fleet.json's models with the peers' added: a peer's URL (and key) joins the `endpoints` of every model it
    /// serves; a model this fleet does not have becomes a model of endpoints only.
    func mergedModels() -> [ModelConfig] {
        var models = configured.withLock { $0 }
        let imported = self.imported.withLock { $0 }
        for peer in config.peers {
            for model in imported[peer.url] ?? [] {
                if let index = models.firstIndex(where: { $0.name == model.name }) {
                    if !models[index].endpoints.contains(peer.url) { models[index].endpoints.append(peer.url) }
                    if let key = peer.apiKey { models[index].endpointKeys[peer.url] = key }
                    continue
                }
                let taken = Set(models.flatMap { [$0.name] + $0.aliases })
                var added = ModelConfig(name: model.name, path: "")
                added.replicas = 0
                added.aliases = model.aliases.filter { !taken.contains($0) }
                added.endpoints = [peer.url]
                if let key = peer.apiKey { added.endpointKeys[peer.url] = key }
                models.append(added)
            }
        }
        return models
    }

    private func follow(_ peer: Peer) async {
        var logger = Logger(label: "fleet.peers")
        logger[metadataKey: "peer"] = "\(peer.url)"
        while !Task.isCancelled {
            do {
                let models = try await modelList(of: peer)
                let changed = imported.withLock { all -> Bool in
                    defer { all[peer.url] = models }
                    return all[peer.url] != models
                }
                if changed {
                    logger.info("peer serves \(models.map(\.name).joined(separator: ", "))")
                    await applyMerged()
                }
            } catch {
                // What was imported stays: its members' health checks say whether the peer still answers.
                logger.warning("cannot read the peer's models; keeping what it served", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: peer.refresh)
        }
    }

    /// The peer's models: each entry's `root` (its canonical name; `id` when absent) with the other ids as aliases.
    private func modelList(of peer: Peer) async throws -> [ImportedModel] {
        let response = try await client.fetch(UpstreamRequest(
            url: peer.url + "/v1/models", headers: peer.apiKey.map { [("Authorization", "Bearer \($0)")] } ?? [],
            connectTimeout: .seconds(2), totalTimeout: .seconds(10)))
        guard response.status == 200 else {
            throw UpstreamError(kind: .invalidRequest, url: peer.url + "/v1/models",
                                detail: "answered HTTP \(response.status)\(response.status == 401 ? " (check the peer's apiKey in fleet.json)" : "")")
        }
        guard let json = try JSONSerialization.jsonObject(with: Data(response.bodyText.utf8)) as? [String: Any],
              let data = json["data"] as? [[String: Any]] else {
            throw UpstreamError(kind: .invalidRequest, url: peer.url + "/v1/models", detail: "not a model list")
        }
        var models: [ImportedModel] = []
        for entry in data {
            guard let id = entry["id"] as? String else { continue }
            let root = entry["root"] as? String ?? id
            if let index = models.firstIndex(where: { $0.name == root }) {
                if id != root { models[index].aliases.append(id) }
            } else {
                models.append(ImportedModel(name: root, aliases: id == root ? [] : [id]))
            }
        }
        return models
    }
}
