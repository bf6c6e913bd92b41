import Foundation
import FleetTestSupport
import Testing
@testable import FleetCore
@testable import FleetRouting
@testable import FleetClient
@testable import FleetServer

@Suite("status table with traffic")
struct StatusTableTrafficTests {
    @Test func trafficAndModelsAreShown() {
        let now = Date()
        var instance = InstanceStatus(id: "m/0", model: "m", replica: 0, port: 8100, pid: 42, state: .ready, since: now,
                                      readySince: now, restarts: 0, lastError: nil, logFile: "/x")
        var member = PoolMember(kind: .instance(InstanceID(model: "m", replica: 0)), baseURL: "http://x", capacity: 4, ready: true)
        member.inFlight = 3
        var stats = ModelPool.MemberStats()
        stats.served = 17
        stats.errors = 1
        stats.lastLatency = .milliseconds(250)
        stats.tokens = 40
        stats.lastTokensPerSecond = 47.25
        stats.promptCache = PromptCacheCounts(promptTokens: 1000, cachedTokens: 871)
        instance.traffic = TrafficStatus(member: member, stats: stats)
        var remote = InstanceStatus(id: "http://h:1", model: "m", replica: -1, port: 1, pid: nil, state: .ready, since: now,
                                    readySince: nil, restarts: 0, lastError: nil, logFile: "")
        remote.managed = false
        let status = FleetStatus(
            controller: ControllerInfo(version: "1", pid: 1, listen: "l", url: "u", config: "c", startedAt: now,
                                       stateDirectory: "/s", llamaServer: "/l"),
            models: [{
                var model = ModelStatus(name: "m", aliases: ["a"], path: "/m", replicas: 1, policy: "prefixAware", queueDepth: 2)
                model.promptCache = PromptCacheCounts(promptTokens: 2000, cachedTokens: 1500)
                return model
            }()],
            instances: [instance, remote])
        let table = StatusTable.render(status, now: now)
        #expect(table.contains("model m (a): prefixAware, 2 queued, prompt cache 75% hit (1500 of 2000 tokens)"), "\(table)")
        #expect(table.contains("3/4   17      1       250ms  47.3   87%"), "\(table)")
        #expect(table.contains("remote"))
    }
}
