extension FleetConfig {
    /// The controller-level keys of fleet.json that a reload cannot apply (they take effect at the next
    /// `fleet up`), each with how to tell that it changed. Every key of `controllerKeys` is either here or in
    /// `reloadableKeys`; a test keeps the two lists covering the parser's, so a new key cannot be forgotten.
    static let restartOnlySettings: [(key: String, differs: @Sendable (FleetConfig, FleetConfig) -> Bool)] = [
        ("listen", { $0.listen != $1.listen }),
        ("llamaServer", { $0.llamaServer != $1.llamaServer }),
        ("portRange", { $0.portRange != $1.portRange }),
        ("stateDir", { $0.stateDirectory != $1.stateDirectory }),
        ("healthCheck", { $0.healthCheck != $1.healthCheck }),
        ("restart", { $0.restart != $1.restart }),
        ("stopTimeout", { $0.stopTimeout != $1.stopTimeout }),
        ("drainTimeout", { $0.drainTimeout != $1.drainTimeout }),
        ("watch", { $0.watch != $1.watch }),
        ("gateway", { $0.gateway != $1.gateway }),
        ("allowedHosts", { $0.allowedHosts != $1.allowedHosts }),
        ("resolver", { $0.resolver != $1.resolver }),
        ("peers", { $0.peers != $1.peers }),
    ]

    /// The controller-level keys a reload applies at once.
    static let reloadableKeys: Set<String> = ["$schema", "models", "memoryBudget", "apiKeys", "apiKeysFile", "adminKeys",
                                              "adminKeysFile"]

    /// The restart-only settings that differ between this configuration and the running one, by fleet.json key.
    public func settingsNeedingRestart(comparedWith running: FleetConfig) -> [String] {
        Self.restartOnlySettings.filter { $0.differs(self, running) }.map(\.key)
    }
}
