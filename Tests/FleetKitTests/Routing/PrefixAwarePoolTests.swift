import FleetTestSupport
import Foundation
import Testing
@testable import FleetRouting
@testable import FleetConfig
@testable import FleetCore

@Suite("prefix-aware pools: conversations stay, load spills, caches are forgotten", .timeLimit(.minutes(1)))
struct PrefixAwarePoolTests {
    func pool(members: Int = 2, capacity: Int = 2, policy: SchedulingPolicy = .prefixAware,
              maxWait: Duration = .seconds(30)) async -> ModelPool {
        var prefix = PrefixRoutingSettings()
        prefix.maxWait = maxWait
        let pool = ModelPool(model: "m", policy: policy, queue: QueueSettings(), prefixRouting: prefix)
        for index in 0..<members {
            await pool.setMember(.instance(InstanceID(model: "m", replica: index)), baseURL: "http://x:\(index)",
                                 capacity: capacity, ready: true)
        }
        return pool
    }

    /// Turn `turn` of conversation `name`: its blocks so far.
    func turn(_ name: UInt64, _ turn: Int) -> RoutingHint {
        RoutingHint(fingerprints: (0..<(4 + turn * 2)).map { name << 32 | UInt64($0) })
    }

    @Test func everyTurnOfAConversationGoesWhereItsPrefixIs() async throws {
        let pool = await pool()
        var homes: [UInt64: String] = [:]
        for round in 0..<4 {
            for conversation: UInt64 in 1...4 {
                let lease = try await pool.acquire(hint: turn(conversation, round))
                if round == 0 { homes[conversation] = lease.memberID }
                #expect(lease.memberID == homes[conversation], "conversation \(conversation), turn \(round)")
                await lease.release(.success(firstByte: nil))
            }
        }
        #expect(Set(homes.values).count == 2, "new conversations spread over both replicas")
    }

    @Test func roundRobinIgnoresPrefixes() async throws {
        let pool = await pool(policy: .roundRobin)
        var members: [String] = []
        for round in 0..<4 {
            let lease = try await pool.acquire(hint: turn(1, round))
            members.append(lease.memberID)
            await lease.release(.success(firstByte: nil))
        }
        #expect(Set(members).count == 2)
    }

    @Test func aSaturatedOwnerSpillsAndTheOtherReplicaThenOwnsTheConversationToo() async throws {
        let pool = await pool(capacity: 1)
        let first = try await pool.acquire(hint: turn(1, 0))
        // The owner is busy (its only slot): the next turn goes to the other replica rather than wait.
        let spilled = try await pool.acquire(hint: turn(1, 1))
        #expect(spilled.memberID != first.memberID)
        await first.release(.success(firstByte: nil))
        await spilled.release(.success(firstByte: nil))
        // Both hold the conversation now; the longer match (the spilled turn) wins.
        let next = try await pool.acquire(hint: turn(1, 2))
        #expect(next.memberID == spilled.memberID)
        await next.release(.success(firstByte: nil))
    }

    @Test func aReplicaLeavingRotationIsForgotten() async throws {
        let pool = await pool()
        let lease = try await pool.acquire(hint: turn(1, 0))
        let owner = lease.memberID
        await lease.release(.success(firstByte: nil))
        #expect(await pool.records[owner]?.matched(turn(1, 1).fingerprints) ?? 0 > 0)
        // A restart: not ready, then ready again (its cache is empty now).
        let id = InstanceID(model: "m", replica: owner.hasPrefix("m/0") ? 0 : 1)
        await pool.setMember(.instance(id), baseURL: "http://x:\(id.replica)", capacity: 2, ready: false)
        await pool.setMember(.instance(id), baseURL: "http://x:\(id.replica)", capacity: 2, ready: true)
        #expect(await pool.records[owner] == nil)
        for forget in [{ await pool.suspend(id: owner) }, { await pool.takeOutOfRotation(id: owner) }] as [() async -> Void] {
            let again = try await pool.acquire(hint: turn(1, 2))
            await again.release(.success(firstByte: nil))
            await pool.setMember(.instance(id), baseURL: "http://x:\(id.replica)", capacity: 2, ready: true)
            await pool.readmit(id: owner)
            if again.memberID == owner {
                await forget()
                #expect(await pool.records[owner] == nil)
            }
        }
    }

    @Test func queuedRequestsGoToTheirOwnReplicaWhenItFrees() async throws {
        let pool = await pool(capacity: 1)
        let onA = try await pool.acquire(hint: turn(1, 0))
        let onB = try await pool.acquire(hint: turn(2, 0))
        #expect(onA.memberID != onB.memberID)
        // Both busy: conversation 2's next turn queues first, conversation 1's second.
        let second2 = Task { try await pool.acquire(hint: turn(2, 1)) }
        try await eventually("queued") { await pool.snapshot().queueDepth == 1 }
        let second1 = Task { try await pool.acquire(hint: turn(1, 1)) }
        try await eventually("queued") { await pool.snapshot().queueDepth == 2 }
        // A frees: conversation 1 (behind in the queue) gets its own replica.
        await onA.release(.success(firstByte: nil))
        let lease1 = try await second1.value
        #expect(lease1.memberID == onA.memberID)
        #expect(await pool.snapshot().queueDepth == 1)
        await onB.release(.success(firstByte: nil))
        let lease2 = try await second2.value
        #expect(lease2.memberID == onB.memberID)
        // A waiter whose replica stays busy takes any free slot: no answer has said yet what evaluating a prompt
        // token costs, so waiting cannot be shown to be worth it.
        let third2 = Task { try await pool.acquire(hint: turn(2, 2)) }
        try await eventually("queued") { await pool.snapshot().queueDepth == 1 }
        await lease1.release(.success(firstByte: nil))
        #expect(try await third2.value.memberID == onA.memberID)
        await lease2.release(.success(firstByte: nil))
    }

    /// A conversation of 4 blocks (≈ 256 tokens) on a busy owner, with evaluating a token known to cost
    /// `msPerToken`: returns the pool, the lease holding the owner, and the owner's id.
    func busyOwner(msPerToken: Double?, maxWait: Duration = .seconds(30)) async throws -> (ModelPool, Lease) {
        let pool = await pool(capacity: 1, maxWait: maxWait)
        let first = try await pool.acquire(hint: turn(1, 0))
        await first.release(.success(firstByte: nil, promptMsPerToken: msPerToken))
        return (pool, try await pool.acquire(hint: turn(1, 0)))
    }

    @Test func aFullOwnerIsWaitedForAsLongAsEvaluatingThePrefixElsewhereWouldTake() async throws {
        // 256 tokens × 2 ms: worth waiting up to ~0.5 s for the owner; it frees sooner.
        let (pool, owner) = try await busyOwner(msPerToken: 2)
        let next = Task { try await pool.acquire(hint: turn(1, 1)) }
        try await eventually("waits for its owner though the other replica is idle") { await pool.snapshot().queueDepth == 1 }
        await owner.release(.success(firstByte: nil))
        #expect(try await next.value.memberID == owner.memberID)
    }

    @Test func aWaitLongerThanTheRecomputationSpillsToTheIdleReplica() async throws {
        let (pool, owner) = try await busyOwner(msPerToken: 1)
        let started = ContinuousClock.now
        let spilled = try await pool.acquire(hint: turn(1, 1))
        #expect(spilled.memberID != owner.memberID)
        #expect(ContinuousClock.now - started >= .milliseconds(200), "it waited about 256 ms first")
        await owner.release(.success(firstByte: nil))
    }

    @Test func noWaitWithoutAKnownCostWithMaxWaitZeroOrBeyondTheOwnersNextRound() async throws {
        for (cost, maxWait) in [(nil, Duration.seconds(30)), (5.0, .zero)] as [(Double?, Duration)] {
            let (pool, owner) = try await busyOwner(msPerToken: cost, maxWait: maxWait)
            #expect(try await pool.acquire(hint: turn(1, 1)).memberID != owner.memberID, "\(String(describing: cost)) \(maxWait)")
        }
        // One request may wait for a one-slot owner; the next spills at once.
        let (pool, owner) = try await busyOwner(msPerToken: 100)
        let waiting = Task { try await pool.acquire(hint: turn(1, 1)) }
        try await eventually("the first waits") { await pool.snapshot().queueDepth == 1 }
        let spilled = try await pool.acquire(hint: turn(1, 1))
        #expect(spilled.memberID != owner.memberID)
        await spilled.release(.success(firstByte: nil))
        await owner.release(.success(firstByte: nil))
        _ = try await waiting.value
    }

    @Test func halfARoundWaitsBesideAnIdleReplicaAndAWholeRoundBesideABusyOne() async throws {
        for otherBusy in [false, true] {
            let pool = await pool(capacity: 2)
            let first = try await pool.acquire(hint: turn(1, 0))
            await first.release(.success(firstByte: nil, promptMsPerToken: 100))
            let owner = [try await pool.acquire(hint: turn(1, 0)), try await pool.acquire(hint: turn(1, 0))]
            #expect(owner[0].memberID == owner[1].memberID)
            let other = otherBusy ? try await pool.acquire(hint: turn(2, 0)) : nil
            #expect(other?.memberID != owner[0].memberID)
            let waiting = Task { try await pool.acquire(hint: turn(1, 1)) }
            try await eventually("the first waits") { await pool.snapshot().queueDepth == 1 }
            let second = Task { try await pool.acquire(hint: turn(1, 1)) }
            if otherBusy {
                try await eventually("a whole round waits beside a busy replica") { await pool.snapshot().queueDepth == 2 }
                await owner[0].release(.success(firstByte: nil))
                await owner[1].release(.success(firstByte: nil))
                #expect(try await [waiting.value, second.value].allSatisfy { $0.memberID == owner[0].memberID })
            } else {
                let spilled = try await second.value
                #expect(spilled.memberID != owner[0].memberID, "beyond half a round, the idle replica takes it")
                for lease in owner + [spilled] { await lease.release(.success(firstByte: nil)) }
                _ = try await waiting.value
            }
            await other?.release(.success(firstByte: nil))
        }
    }

    @Test func aSessionKeySticksUnderLeastBusyAndMovesWhenItsReplicaLeaves() async throws {
        let pool = await pool(policy: .leastBusy)
        let session = RoutingHint(session: "agent-7")
        let first = try await pool.acquire(hint: session)
        // Another request makes the session's replica the busier one; the session stays anyway.
        let other = try await pool.acquire()
        #expect(other.memberID != first.memberID)
        let busier = try await pool.acquire(hint: RoutingHint(session: "someone-else"))
        await busier.release(.success(firstByte: nil))
        let second = try await pool.acquire(hint: session)
        #expect(second.memberID == first.memberID)
        await second.release(.success(firstByte: nil))
        await first.release(.success(firstByte: nil))
        await other.release(.success(firstByte: nil))
        await pool.suspend(id: first.memberID)
        let moved = try await pool.acquire(hint: session)
        #expect(moved.memberID != first.memberID)
        await pool.readmit(id: first.memberID)
        await moved.release(.success(firstByte: nil))
        let stays = try await pool.acquire(hint: session)
        #expect(stays.memberID == moved.memberID, "the session now lives on the replica it moved to")
        await stays.release(.success(firstByte: nil))
    }

    @Test func theCacheFiguresAddUpPerReplicaAndPerModel() async throws {
        let pool = await pool()
        for cached in [0, 90] {
            let lease = try await pool.acquire(hint: turn(1, 0))
            await lease.release(.success(firstByte: nil, tokens: 3, cache: PromptCacheCounts(promptTokens: 100, cachedTokens: cached)))
        }
        let snapshot = await pool.snapshot()
        #expect(snapshot.promptCache == PromptCacheCounts(promptTokens: 200, cachedTokens: 90))
        #expect(snapshot.promptCache.hitRatio == 0.45)
        #expect(snapshot.members.map(\.stats.promptCache.promptTokens).reduce(0, +) == 200)
    }

    @Test func thePolicyChangesAtRuntimeAndSaysWhatItReplaced() async {
        let pool = await pool(policy: .roundRobin)
        #expect(!pool.usesPrefixes)
        #expect(await pool.setPolicy(.prefixAware) == .roundRobin)
        #expect(pool.usesPrefixes)
    }
}
