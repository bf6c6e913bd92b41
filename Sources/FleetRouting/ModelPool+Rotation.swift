import Foundation
import FleetCore

/// Members in and out of rotation (failover suspends, health checks readmit) and what the endpoints' health
/// checks say, for status.
extension ModelPool {
    /// Marks a member not ready; it keeps its in-flight requests and its place.
    public func takeOutOfRotation(id: String) {
        guard let index = members.firstIndex(where: { $0.id == id }) else { return }
        members[index].ready = false
        forget(id)
    }

    /// Takes a member out of rotation after it failed a request before sending anything; `readmit` puts it
    /// back once a health check passes.
    public func suspend(id: String) {
        guard let index = members.firstIndex(where: { $0.id == id }) else { return }
        members[index].suspended = true
        forget(id)
    }

    public func readmit(id: String) {
        guard let index = members.firstIndex(where: { $0.id == id }), members[index].suspended else { return }
        members[index].suspended = false
        dispatchWaiters()
    }

    /// An endpoint no longer in fleet.json: gone from status (its member retires on its own).
    func removeEndpoint(_ url: String) {
        endpoints[url] = nil
    }

    func setEndpoint(_ url: String, state: InstanceState, detail: String?) {
        if endpoints[url]?.state != state || endpoints[url]?.detail != detail {
            let since = endpoints[url]?.state == state ? endpoints[url]!.since : Date()
            endpoints[url] = EndpointState(state: state, since: since, detail: detail)
        }
    }
}
