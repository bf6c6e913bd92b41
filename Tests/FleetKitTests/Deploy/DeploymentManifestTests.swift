import Foundation
import Testing
import Yams
@testable import FleetConfig

/// deploy/kubernetes and the Dockerfile, checked offline: every document parses, every container has an image,
/// ports and probes on /health, the headless Service is headless, and the ConfigMap's fleet.json is a valid
/// fleet.json whose `discover` names that Service and its port.
@Suite("deployment files, offline")
struct DeploymentManifestTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// Every document of every manifest.
    func documents() throws -> [[String: Any]] {
        let folder = Self.root.appendingPathComponent("deploy/kubernetes")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(files == ["fleet.yaml", "llama-gemma.yaml", "models-volume.yaml"])
        return try files.flatMap { file in
            let text = try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
            return try Yams.load_all(yaml: text).map { document in
                try #require(document as? [String: Any], "\(file): a document that is not a mapping")
            }
        }
    }

    func named(_ kind: String, _ name: String, in documents: [[String: Any]]) throws -> [String: Any] {
        try #require(documents.first { $0["kind"] as? String == kind && ($0["metadata"] as? [String: Any])?["name"] as? String == name },
                     "no \(kind) \(name)")
    }

    @Test func everyContainerHasAnImagePortsAndHealthProbes() throws {
        let documents = try documents()
        let deployments = documents.filter { $0["kind"] as? String == "Deployment" }
        #expect(deployments.count == 2)
        for deployment in deployments {
            let spec = try #require((deployment["spec"] as? [String: Any])?["template"] as? [String: Any])
            let pod = try #require(spec["spec"] as? [String: Any])
            let containers = try #require(pod["containers"] as? [[String: Any]])
            #expect(!containers.isEmpty)
            for container in containers {
                let name = container["name"] as? String ?? "?"
                #expect((container["image"] as? String)?.isEmpty == false, "\(name): image")
                let ports = try #require(container["ports"] as? [[String: Any]], "\(name): ports")
                #expect(ports.allSatisfy { $0["containerPort"] is Int }, "\(name): container ports")
                for probe in ["readinessProbe", "livenessProbe"] {
                    let get = (container[probe] as? [String: Any])?["httpGet"] as? [String: Any]
                    #expect(get?["path"] as? String == "/health", "\(name): \(probe) on /health")
                }
            }
            #expect((pod["securityContext"] as? [String: Any])?["runAsNonRoot"] as? Bool == true)
        }
        let annotations = try #require(((try named("Deployment", "fleet", in: documents)["spec"] as? [String: Any])?["template"]
            as? [String: Any])?["metadata"] as? [String: Any])?["annotations"] as? [String: Any]
        #expect(annotations?["prometheus.io/scrape"] as? String == "true" && annotations?["prometheus.io/path"] as? String == "/metrics")
    }

    @Test func theConfigMapsFleetJSONIsValidAndDiscoversTheHeadlessService() throws {
        let documents = try documents()
        let service = try named("Service", "llama-gemma", in: documents)
        let serviceSpec = try #require(service["spec"] as? [String: Any])
        #expect(serviceSpec["clusterIP"] as? String == "None", "headless: its name lists every pod")
        let namespace = try #require((service["metadata"] as? [String: Any])?["namespace"] as? String)
        let port = try #require((serviceSpec["ports"] as? [[String: Any]])?.first?["port"] as? Int)

        let map = try named("ConfigMap", "fleet-config", in: documents)
        let text = try #require((map["data"] as? [String: Any])?["fleet.json"] as? String)
        let config = try FleetConfig.decode(Data(text.utf8), source: "deploy/kubernetes/fleet.yaml", baseDirectory: "/etc/fleet",
                                            checkFiles: false)
        #expect(config.models.map(\.name) == ["gemma"] && config.listen.port == 8090)
        #expect(config.models[0].discover == [DiscoverySource(.addresses(name: "llama-gemma.\(namespace).svc.cluster.local", port: port),
                                                               interval: .seconds(5))])
        // The fleet container's port is the one fleet.json listens on, and its keys come from the Secret.
        let fleet = try named("Deployment", "fleet", in: documents)
        let pod = try #require(((fleet["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])
        let container = try #require((pod["containers"] as? [[String: Any]])?.first)
        #expect((container["ports"] as? [[String: Any]])?.first?["containerPort"] as? Int == config.listen.port)
        let volumes = try #require(pod["volumes"] as? [[String: Any]])
        #expect(volumes.contains { ($0["secret"] as? [String: Any])?["secretName"] as? String == "fleet-keys" })
        _ = try named("Secret", "fleet-keys", in: documents)
        // fleet.json reads its keys from where the Secret is mounted.
        #expect(text.contains(#""apiKeysFile": "/etc/fleet/keys/api-keys""#))
        let mounts = try #require(container["volumeMounts"] as? [[String: Any]])
        #expect(mounts.contains { $0["name"] as? String == "keys" && $0["mountPath"] as? String == "/etc/fleet/keys" })
    }

    @Test func theImageBuildsInStagesAndRunsFleetUnprivileged() throws {
        let dockerfile = try String(contentsOf: Self.root.appendingPathComponent("Dockerfile"), encoding: .utf8)
        let lines = dockerfile.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(lines.filter { $0.hasPrefix("FROM ") }.count == 3, "fleet, llama-server, runtime")
        #expect(lines.contains { $0.hasPrefix("RUN swift build -c release") })
        #expect(lines.contains { $0.contains("scripts/install-llama-server.sh") })
        #expect(lines.contains("USER 10001:10001"))
        #expect(lines.contains(#"ENTRYPOINT ["fleet", "up", "--config", "/etc/fleet/fleet.json"]"#))
        #expect(lines.contains("STOPSIGNAL SIGTERM"))
        // The dashboard page is a resource bundle read from beside the binary: it must travel with it.
        #expect(lines.contains("COPY --from=fleet-build /out/fleet_FleetServer.resources /usr/local/bin/fleet_FleetServer.resources"))
    }
}
