import Testing
@testable import FleetConfig
@testable import FleetSupervision

/// A reload's plan, from what runs and what fleet.json says, without a process.
@Suite("reload plan")
struct ReloadPlanTests {
    func model(_ name: String, replicas: Int = 1, _ change: (inout ModelConfig) -> Void = { _ in }) -> ModelConfig {
        var model = ModelConfig(name: name, path: "/m/\(name).gguf")
        model.replicas = replicas
        change(&model)
        return model
    }

    func plan(_ running: [ModelConfig], idle: Set<String> = [], _ wanted: [ModelConfig]) -> [ReloadPlan.Step] {
        let table = Dictionary(uniqueKeysWithValues: running.map { ($0.name, (config: $0, idle: idle.contains($0.name))) })
        return ReloadPlan(running: table, wanted: wanted, executable: "llama-server").steps
    }

    @Test func removedModelsGoFirstThenEachWantedModelInOrder() {
        let steps = plan([model("a"), model("z"), model("d")], [model("a"), model("e")])
        #expect(steps.count == 4)
        #expect(steps[0] == .remove("d") && steps[1] == .remove("z"))
        guard case .update(let a) = steps[2], case .add(let e) = steps[3] else { Issue.record("\(steps)"); return }
        #expect(a.wanted.name == "a" && !a.swap && !a.scaleUp && !a.scaleDown && !a.routingOnly, "unchanged")
        #expect(e.name == "e")
    }

    @Test func aCommandLineChangeIsASwapARoutingChangeIsNot() {
        let steps = plan([model("c"), model("r")], [model("c") { $0.contextSize = 2048 }, model("r") { $0.aliases = ["x"] }])
        guard case .update(let c) = steps[0], case .update(let r) = steps[1] else { Issue.record("\(steps)"); return }
        #expect(c.swap && !c.routingOnly)
        #expect(!r.swap && r.routingOnly)
    }

    @Test func replicasScaleEitherWay() {
        let steps = plan([model("b", replicas: 2), model("u", replicas: 1)], [model("b", replicas: 1), model("u", replicas: 3)])
        guard case .update(let b) = steps[0], case .update(let u) = steps[1] else { Issue.record("\(steps)"); return }
        #expect(b.scaleDown && !b.scaleUp && !b.swap && !b.routingOnly)
        #expect(u.scaleUp && !u.scaleDown && !u.routingOnly)
    }

    @Test func anIdleModelOnlyTakesTheNewSettings() {
        let steps = plan([model("i") { $0.startOnDemand = true }], idle: ["i"],
                         [model("i") { $0.startOnDemand = true; $0.contextSize = 1024 }])
        guard case .updateIdle(let wanted, let changed) = steps[0] else { Issue.record("\(steps)"); return }
        #expect(wanted.contextSize == 1024 && changed)
    }
}
