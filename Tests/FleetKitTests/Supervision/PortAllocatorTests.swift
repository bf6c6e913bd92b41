import Foundation
import FleetTestSupport
import Testing
@testable import FleetSupervision

@Suite("port allocation")
struct PortAllocatorTests {
    @Test func handsOutFreePortsOnceEach() throws {
        var allocator = PortAllocator(range: 9000...9003)
        let taken: Set<Int> = [9001]
        let a = try allocator.allocate { !taken.contains($0) }
        let b = try allocator.allocate { !taken.contains($0) }
        let c = try allocator.allocate { !taken.contains($0) }
        #expect([a, b, c] as [Int] == [9000, 9002, 9003])
        #expect(throws: PortAllocator.Exhausted.self) { try allocator.allocate { !taken.contains($0) } }
    }

    @Test func releasedPortsComeBackAfterTheRestOfTheRange() throws {
        var allocator = PortAllocator(range: 9000...9002)
        let first = try allocator.allocate { _ in true }
        allocator.release(first)
        #expect(try allocator.allocate { _ in true } == 9001)
        #expect(try allocator.allocate { _ in true } == 9002)
        #expect(try allocator.allocate { _ in true } == 9000)
    }

    @Test func exhaustionSaysWhatToChange() {
        var allocator = PortAllocator(range: 9000...9000)
        #expect { try allocator.allocate { _ in false } } throws: { "\($0)".contains("widen portRange") }
    }

    @Test func aListeningPortIsNotFree() throws {
        let port = TestPorts.block(1).lowerBound
        #expect(PortAllocator.isFree(port))
        let fd = occupyPort(port)
        defer { close(fd) }
        #expect(!PortAllocator.isFree(port))
    }
}
