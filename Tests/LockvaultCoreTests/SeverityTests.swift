import Foundation
import Testing
@testable import LockvaultCore

@Suite struct SeverityPolicyTests {
    let policy = SeverityPolicy()

    @Test(arguments: [(9.99, BlockerSeverity.low), (10, .medium), (59.9, .medium), (60, .high), (299, .high), (300, .critical)])
    func timeThresholdsForAnActiveBlocker(_ seconds: Double, _ expected: BlockerSeverity) {
        #expect(policy.classify(blockingSeconds: seconds, blockedCount: 1, idleInTransaction: false, holdsAccessExclusive: false) == expected)
    }

    @Test func idleInTransactionReachesThresholdsSooner() {
        #expect(policy.classify(blockingSeconds: 5, blockedCount: 1, idleInTransaction: true, holdsAccessExclusive: false) == .medium)
        #expect(policy.classify(blockingSeconds: 150, blockedCount: 1, idleInTransaction: true, holdsAccessExclusive: false) == .critical)
        #expect(policy.classify(blockingSeconds: 150, blockedCount: 1, idleInTransaction: false, holdsAccessExclusive: false) == .high)
    }

    @Test func manyBlockedSessionsEscalate() {
        #expect(policy.classify(blockingSeconds: 1, blockedCount: 4, idleInTransaction: false, holdsAccessExclusive: false) == .low)
        #expect(policy.classify(blockingSeconds: 1, blockedCount: 5, idleInTransaction: false, holdsAccessExclusive: false) == .high)
        #expect(policy.classify(blockingSeconds: 1, blockedCount: 20, idleInTransaction: false, holdsAccessExclusive: false) == .critical)
    }

    @Test func accessExclusiveRaisesOneLevelCapped() {
        #expect(policy.classify(blockingSeconds: 1, blockedCount: 1, idleInTransaction: false, holdsAccessExclusive: true) == .medium)
        #expect(policy.classify(blockingSeconds: 400, blockedCount: 1, idleInTransaction: false, holdsAccessExclusive: true) == .critical)
        var off = policy
        off.exclusiveLockEscalates = false
        #expect(off.classify(blockingSeconds: 1, blockedCount: 1, idleInTransaction: false, holdsAccessExclusive: true) == .low)
    }
}

@Suite struct BlockerAssessmentTests {
    @Test func idleInTransactionRootBlockerIsCriticalAndSaysWhatToDo() throws {
        let s = Fixture.snapshot(sessions: [Fixture.session(4711, state: .idleInTransaction)],
                                 waiters: [Fixture.waits(2, on: [4711], since: 312), Fixture.waits(3, on: [2], since: 100)],
                                 locks: [Fixture.holds(4711)])
        let a = try #require(BlockerAssessment.assess(s, policy: SeverityPolicy()).first)
        #expect(a.pid == 4711)
        #expect(a.severity == .critical)
        #expect(a.blockedCount == 2)
        #expect(a.directlyBlocked == [2])
        #expect(a.isRoot)
        #expect(a.heldMode == .accessExclusive)
        #expect(a.recommendedAction == "idle in transaction, holding AccessExclusiveLock on relation public.orders, blocking 2 — commit it or terminate pid 4711; consider idle_in_transaction_session_timeout")
    }

    @Test func worstFirstAndNonRootsSayToLookAhead() {
        let s = Fixture.snapshot(sessions: [Fixture.session(1), Fixture.session(9, state: .idleInTransaction)],
                                 waiters: [Fixture.waits(2, on: [1], since: 20), Fixture.waits(3, on: [2], since: 5), Fixture.waits(8, on: [9], since: 1000)])
        let a = BlockerAssessment.assess(s, policy: SeverityPolicy())
        #expect(a.map(\.pid) == [9, 1, 2])
        #expect(a[2].isRoot == false)
        #expect(a[2].recommendedAction.contains("resolve the blocker ahead of pid 2"))
    }
}
