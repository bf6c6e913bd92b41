import FleetCore

/// `fleet bench --compare`: the same plan once per routing policy on a running fleet — the same seed, so the same
/// sessions, lengths and think times, but texts of each run's own, so no run profits from what the one before left
/// in llama-server's caches — switching the model's policy through the control API before each run and putting the original back
/// afterwards — also when a run fails or is interrupted.
public struct BenchComparison: Sendable {
    public let runner: BenchRunner
    public let control: ControlClient
    public let policies: [String]

    public init(runner: BenchRunner, control: ControlClient, policies: [String]) {
        self.runner = runner
        self.control = control
        self.policies = policies
    }

    /// The name the control API knows the model by: `model` itself or the model it is an alias of.
    /// - Throws: `BenchError.unknownModel` when `/status` lists no such model.
    public func modelName() async throws -> (name: String, policy: String) {
        let status = try await control.status()
        let wanted = runner.plan.model
        guard let model = status.models.first(where: { $0.name == wanted || $0.aliases.contains(wanted) }) else {
            throw BenchError.unknownModel(model: wanted, url: runner.baseURL, available: status.models.map(\.name))
        }
        return (model.name, model.policy)
    }

    /// Runs the plan under each policy in turn and returns one report per policy (fewer when interrupted).
    /// - Parameters:
    ///   - starting: called before each run with the policy about to be measured.
    ///   - progress: the runner's progress, for the run under way.
    /// - Throws: what `setPolicy` throws (unknown model or policy, unreachable controller, a key without admin
    ///   rights); the original policy is restored first when it can be.
    public func run(starting: @Sendable (String) -> Void = { _ in },
                    progress: @escaping @Sendable (BenchProgress) -> Void = { _ in }) async throws -> [BenchReport] {
        let (name, original) = try await modelName()
        var reports: [BenchReport] = []
        do {
            for (index, policy) in policies.enumerated() {
                if Task.isCancelled { break }
                _ = try await control.setPolicy(model: name, policy: policy)
                starting(policy)
                // Texts of its own per run: llama-server still holds the previous run's prompts in its caches.
                var plan = runner.plan
                plan.workload.run = index
                let report = try await BenchRunner(baseURL: runner.baseURL, apiKey: runner.apiKey, plan: plan)
                    .run(policy: policy, progress: progress)
                reports.append(report)
                if report.interrupted { break }
            }
        } catch {
            await restore(name, to: original)
            throw error
        }
        await restore(name, to: original)
        return reports
    }

    /// Puts the policy back, in a task of its own: the run's task may be cancelled (Ctrl-C), and the restore must
    /// still reach the controller.
    private func restore(_ model: String, to policy: String) async {
        let control = self.control
        _ = await Task.detached { try? await control.setPolicy(model: model, policy: policy) }.value
    }
}
