import Foundation

extension FleetConfig {
    /// Checks that need the whole configuration (or the disk): names, ports, model files.
    func validate(into reader: inout ConfigReader, checkFiles: Bool) {
        var owners: [String: String] = [:]
        for model in models {
            owners[model.name] = model.name
        }
        for model in models {
            for alias in model.aliases {
                if let owner = owners[alias] {
                    let what = owner == alias ? "the name of model \"\(owner)\"" : "already an alias of \"\(owner)\""
                    reader.report("models.\(model.name).aliases", "\"\(alias)\" is \(what)",
                                  fix: "each model name and alias must be unique; pick another alias")
                } else {
                    owners[alias] = model.name
                }
            }
        }
        let defaults = models.filter(\.isDefault).map(\.name)
        if defaults.count > 1 {
            reader.report("models.\(defaults[1]).default", "is true for \(defaults.count) models (\(defaults.joined(separator: ", ")))",
                          fix: "mark one model \"default\": true: the one requests that name no model go to")
        }
        let replicas = models.reduce(0) { $0 + $1.replicas }
        if portRange.count < replicas {
            reader.report("portRange", "has \(portRange.count) ports for \(replicas) replicas",
                          fix: "widen it to at least \(replicas) ports (twice that leaves room for restarts)")
        }
        if portRange.contains(listen.port) {
            reader.report("listen", "port \(listen.port) lies inside portRange \(portRange.lowerBound)-\(portRange.upperBound)",
                          fix: "move listen or portRange so they do not overlap")
        }
        if let server = llamaServer, checkFiles, !FileManager.default.isExecutableFile(atPath: server) {
            reader.report("llamaServer", "\(server) is not an executable file",
                          fix: "point it at llama-server, or remove the key to search PATH and the install cache")
        }
        guard checkFiles else { return }
        var unreadable = false
        for model in models where !model.path.isEmpty {
            if let problem = GGUFFile.problem(at: model.path) {
                reader.report("models.\(model.name).path", problem.message, fix: problem.fix)
                unreadable = true
            }
        }
        if let budget = memoryBudget, !unreadable {
            checkBudget(budget, into: &reader)
        }
    }

    /// Refuses a fleet that can never fit its memory budget (see `MemoryBudget.problems`).
    func checkBudget(_ budget: Int, into reader: inout ConfigReader) {
        var entries: [MemoryBudget.Entry] = []
        for model in models where !model.path.isEmpty {
            let cost: Int
            if let memory = model.memory {
                cost = memory
            } else {
                do {
                    cost = MemoryEstimate(metadata: try GGUFMetadata.read(path: model.path), contextSize: model.contextSize).total
                } catch {
                    reader.report("models.\(model.name).path", "its GGUF header cannot be read to estimate its memory: \(error.detail)",
                                  fix: "set \"memory\" on the model (e.g. \"4GiB\"), or check the file")
                    continue
                }
            }
            entries.append(MemoryBudget.Entry(model: model, instanceCost: cost))
        }
        for problem in MemoryBudget.problems(entries, budget: budget) {
            reader.report(problem.path, problem.message, fix: problem.fix)
        }
    }
}
