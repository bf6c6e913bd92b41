public import Foundation

extension FleetConfig {
    /// The keys the controller enforces: fleet.json's (`apiKeys`, `adminKeys` and their files) and the
    /// environment's (`FLEET_API_KEYS`, `FLEET_ADMIN_KEYS`). The one place the two are merged.
    public func keysInForce(environment: [String: String] = ProcessInfo.processInfo.environment) -> KeySet {
        keys.adding(environment: environment)
    }

    /// A listen address other machines can reach, and no key to keep them out.
    public struct UnprotectedListen: Error, CustomStringConvertible {
        public var address: ListenAddress
        public init(address: ListenAddress) { self.address = address }
        public var description: String {
            "listen \(address) is reachable from other machines but no apiKeys are set, so anyone there could use and control this fleet; set apiKeys in fleet.json (or FLEET_API_KEYS), listen on 127.0.0.1, or pass --allow-unauthenticated if the network is trusted"
        }
    }

    /// Refuses to serve beyond loopback without keys, unless the user said the network is trusted
    /// (`fleet up --allow-unauthenticated`). The one place the rule is written.
    public func checkExposure(keys: KeySet, allowUnauthenticated: Bool) throws(UnprotectedListen) {
        if !listen.isLoopback && !keys.isEnabled && !allowUnauthenticated {
            throw UnprotectedListen(address: listen)
        }
    }
}
