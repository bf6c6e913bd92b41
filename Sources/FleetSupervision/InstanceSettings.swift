import Foundation
import Glibc
import Logging
public import FleetConfig

/// Everything an instance needs to know about how to run, fixed at creation.
public struct InstanceSettings: Sendable {
    public var model: ModelConfig
    public var executable: String
    public var healthCheck: HealthCheckSettings
    public var restart: RestartSettings
    public var stopTimeout: Duration
    public var logDirectory: String
    /// How often a starting instance's `/health` is polled: short, so `ready` is seen soon after it happens.
    public var readinessPollInterval: Duration = .milliseconds(100)

    public init(model: ModelConfig, executable: String, healthCheck: HealthCheckSettings, restart: RestartSettings,
                stopTimeout: Duration, logDirectory: String) {
        self.model = model
        self.executable = executable
        self.healthCheck = healthCheck
        self.restart = restart
        self.stopTimeout = stopTimeout
        self.logDirectory = logDirectory
    }
}
