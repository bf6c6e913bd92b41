import FleetTestSupport
import Foundation
import NIOCore
import Testing
@testable import FleetRouting
@testable import FleetConfig
@testable import FleetCore

@Suite("model pool: slots, queue, leases", .timeLimit(.minutes(1)))
struct ModelPoolTests {
    func pool(maxSize: Int = 10, timeout: Duration = .seconds(10), capacity: Int = 1, members: Int = 1) async -> ModelPool {
        var queue = QueueSettings()
        queue.maxSize = maxSize
        queue.timeout = timeout
        let pool = ModelPool(model: "m", policy: .roundRobin, queue: queue)
        for index in 0..<members {
            await pool.setMember(.instance(InstanceID(model: "m", replica: index)), baseURL: "http://x:\(index)", capacity: capacity, ready: true)
        }
        return pool
    }

    func inFlight(_ pool: ModelPool) async -> [Int] {
        await pool.snapshot().members.map(\.member.inFlight)
    }

    @Test func aWaitingRequestIsWokenByARelease() async throws {
        let pool = await pool()
        let first = try await pool.acquire()
        let waiting = Task { try await pool.acquire() }
        try await eventually("queued") { await pool.snapshot().queueDepth == 1 }
        await first.release(.success(firstByte: nil))
        let second = try await waiting.value
        #expect(second.memberID == "m/0#0")
        #expect(await inFlight(pool) == [1])
        await second.release(.success(firstByte: nil))
        #expect(await inFlight(pool) == [0])
        #expect(await pool.snapshot().members[0].stats.served == 2)
    }

    @Test func theQueueIsBoundedAndRefusesBeyondItsSize() async throws {
        let pool = await pool(maxSize: 1)
        let held = try await pool.acquire()
        let waiting = Task { try await pool.acquire() }
        try await eventually("queued") { await pool.snapshot().queueDepth == 1 }
        await #expect(throws: PoolError.queueFull(maxSize: 1)) { try await pool.acquire() }
        await held.release(.cancelled)
        await (try waiting.value).release(.cancelled)
    }

    @Test func aRequestWaitingTooLongTimesOut() async throws {
        let pool = await pool(timeout: .milliseconds(200))
        let held = try await pool.acquire()
        await #expect(throws: PoolError.queueTimeout(.milliseconds(200))) { try await pool.acquire() }
        #expect(await pool.snapshot().queueDepth == 0)
        await held.release(.cancelled)
    }

    @Test func noReadyMemberMeansWaitingUntilOneIsReady() async throws {
        let pool = await pool(members: 0)
        let waiting = Task { try await pool.acquire() }
        try await eventually("queued") { await pool.snapshot().queueDepth == 1 }
        await pool.setMember(.instance(InstanceID(model: "m", replica: 0)), baseURL: "http://x", capacity: 1, ready: true)
        let lease = try await waiting.value
        #expect(lease.baseURL == "http://x")
        await lease.release(.success(firstByte: nil))
    }

    @Test func countsNeverLeakOrGoNegativeUnderCancellation() async throws {
        let pool = await pool(maxSize: 1000, capacity: 3, members: 2)
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<300 {
                group.addTask {
                    let task = Task { () -> Lease? in try? await pool.acquire() }
                    if index % 3 == 0 { task.cancel() }
                    guard let lease = await task.value else { return }
                    if index % 5 == 0 { return }  // dropped without release: the lease's deinit gives the slot back
                    await lease.release(index % 2 == 0 ? .cancelled : .success(firstByte: nil))
                    await lease.release(.failure)  // a second release is ignored
                }
            }
        }
        try await eventually("every slot back") { await inFlight(pool) == [0, 0] }
        #expect(await pool.snapshot().queueDepth == 0)
        #expect(await pool.snapshot().members.allSatisfy { $0.stats.errors == 0 }, "a double release counted nothing")
    }

    @Test func aSuspendedMemberGetsNoRequestsUntilReadmitted() async throws {
        let pool = await pool(capacity: 5, members: 2)
        await pool.suspend(id: "m/0#0")
        for _ in 0..<3 {
            let lease = try await pool.acquire()
            #expect(lease.memberID == "m/1#0")
            await lease.release(.cancelled)
        }
        await pool.readmit(id: "m/0#0")
        let ids = try await [pool.acquire(), pool.acquire()].map(\.memberID)
        #expect(Set(ids) == ["m/0#0", "m/1#0"])
    }

    @Test func excludingEveryMemberFailsAtOnceInsteadOfWaiting() async throws {
        let pool = await pool(capacity: 5, members: 2)
        await #expect(throws: PoolError.exhausted) { try await pool.acquire(excluding: ["m/0#0", "m/1#0"]) }
    }

    @Test func excludedMembersAreSkippedForThatRequestOnly() async throws {
        let pool = await pool(capacity: 5, members: 2)
        let lease = try await pool.acquire(excluding: ["m/0#0"])
        #expect(lease.memberID == "m/1#0")
        let other = try await pool.acquire()
        #expect(other.memberID == "m/0#0")
    }
}
