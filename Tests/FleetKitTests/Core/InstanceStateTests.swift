import Foundation
import FleetTestSupport
import Testing
@testable import FleetCore

@Suite("instance states")
struct InstanceStateTests {
    @Test func theLifeOfAnInstanceIsAllowed() {
        let path: [InstanceState] = [.stopped, .starting, .ready, .unhealthy, .ready, .unhealthy, .starting, .ready, .stopping, .stopped]
        for (from, to) in zip(path, path.dropFirst()) {
            #expect(from.canTransition(to: to), "\(from) → \(to)")
        }
    }

    @Test(arguments: [
        (InstanceState.stopped, InstanceState.ready), (.ready, .starting), (.stopped, .unhealthy), (.stopping, .ready),
        (.failed, .ready), (.ready, .stopped), (.starting, .stopped),
    ])
    func shortcutsAreNot(from: InstanceState, to: InstanceState) {
        #expect(!from.canTransition(to: to))
    }

    @Test func onlyFailedStoppedAndIdleAreInactive() {
        #expect(InstanceState.allCases.filter { !$0.isActive } == [.stopped, .failed, .idle])
    }
}
