import Foundation
import Testing
@testable import LockvaultCore

/// Hard and soft edges (deadlock.c's words): a blocker that holds what a waiter wants, against
/// one that is only queued ahead of it. Decided from the cycle's own locks, without a database.
@Suite struct BlockKindTests {
    /// The documentation's table of conflicting lock modes, row by row ("X" = conflicts), in the
    /// order AccessShare … AccessExclusive.
    static let documentedTable = [
        ".......X",
        "......XX",
        "....XXXX",
        "...XXXXX",
        "..XX.XXX",
        "..XXXXXX",
        ".XXXXXXX",
        "XXXXXXXX",
    ]

    static func relationLock(_ pid: Int32, _ mode: LockMode, granted: Bool, relation: UInt32 = 100, waitedSeconds: Double = 10) -> LockRecord {
        LockRecord(pid: pid, lockType: .relation, mode: mode, granted: granted, waitStart: granted ? nil : Fixture.now.addingTimeInterval(-waitedSeconds),
                   databaseOID: 5, databaseName: "shop", relationOID: relation, relationName: "public.qt")
    }

    @Test func theConflictTableIsPostgresOwnAndSymmetric() {
        let modes = LockMode.tableModes
        for (i, held) in modes.enumerated() {
            for (j, requested) in modes.enumerated() {
                let documented = Array(Self.documentedTable[i])[j] == "X"
                #expect(held.conflicts(with: requested) == documented, "\(held) vs \(requested)")
                #expect(held.conflicts(with: requested) == requested.conflicts(with: held))
            }
        }
        #expect(!LockMode.other("SIReadLock").conflicts(with: .accessExclusive), "predicate locks never wait in the lock manager")
    }

    /// Over all 64 pairs: a blocker that holds `held` and is also queued for AccessExclusiveLock
    /// (a lock upgrade) is hard for a waiter whose request conflicts with what it holds, and
    /// soft for one that only conflicts with what it queues for.
    @Test func aGrantedConflictingLockIsHardAnythingElseConflictingOnlyInTheQueueIsSoft() {
        for held in LockMode.tableModes {
            for requested in LockMode.tableModes {
                let waiter = [Self.relationLock(2, requested, granted: false)]
                let blocker = [Self.relationLock(1, held, granted: true), Self.relationLock(1, .accessExclusive, granted: false)]
                let expected: BlockKind = held.conflicts(with: requested) ? .hard : .soft
                #expect(BlockKind.of(waiting: waiter, blockerLocks: blocker) == expected, "holds \(held), waiter wants \(requested)")
            }
        }
    }

    /// A blocker that holds nothing on the target and is queued for `queued`: soft exactly where
    /// the modes conflict; where they don't, the locks can't explain the edge and it stays hard.
    @Test func aQueuedRequestIsSoftWhereItConflicts() {
        for queued in LockMode.tableModes {
            for requested in LockMode.tableModes {
                let kind = BlockKind.of(waiting: [Self.relationLock(2, requested, granted: false)], blockerLocks: [Self.relationLock(1, queued, granted: false)])
                #expect(kind == (queued.conflicts(with: requested) ? .soft : .hard), "queued \(queued), waiter wants \(requested)")
            }
        }
    }

    @Test func aLockOnAnotherObjectSaysNothingAndTransactionIdWaitsAreAlwaysHard() {
        let waiter = [Self.relationLock(2, .accessShare, granted: false, relation: 100)]
        #expect(BlockKind.of(waiting: waiter, blockerLocks: [Self.relationLock(1, .accessExclusive, granted: false, relation: 200)]) == .hard)
        for type in [LockType.transactionid, .virtualxid] {
            let wants = LockRecord(pid: 2, lockType: type, mode: .share, granted: false, virtualXID: "3/7", transactionID: "731")
            let holds = LockRecord(pid: 1, lockType: type, mode: .exclusive, granted: true, virtualXID: "3/7", transactionID: "731")
            let queued = LockRecord(pid: 1, lockType: .relation, mode: .accessExclusive, granted: false, databaseOID: 5, relationOID: 100)
            #expect(BlockKind.of(waiting: [wants], blockerLocks: [queued, holds]) == .hard)
        }
    }

    /// H reads qt in an open transaction; M (ALTER TABLE) waits for AccessExclusiveLock behind
    /// it; two readers queue behind M.
    static func ddlPileUp(readers: [Int32] = [3, 4], migrationWaited: Double = 20) -> LockSnapshot {
        var h = Fixture.session(1, state: .idleInTransaction)
        h.applicationName = "report"
        var m = Fixture.session(2)
        m.waitEventType = "Lock"
        m.blockedBy = [1]
        var sessions = [h, m]
        var locks = [relationLock(1, .accessShare, granted: true), relationLock(2, .accessExclusive, granted: false, waitedSeconds: migrationWaited)]
        for r in readers {
            var reader = Fixture.session(r)
            reader.waitEventType = "Lock"
            reader.blockedBy = [2]
            sessions.append(reader)
            locks.append(relationLock(r, .accessShare, granted: false, waitedSeconds: 5))
        }
        return LockSnapshot(capturedAt: Fixture.now, backends: sessions, locks: locks)
    }

    @Test func theMigrationIsAQueuedRequestAndTheLongTransactionTheHolder() throws {
        let snapshot = Self.ddlPileUp()
        let graph = WaitGraph(snapshot)
        #expect(graph.kind(waiter: .session(2), blocker: .session(1)) == .hard)
        #expect(graph.kind(waiter: .session(3), blocker: .session(2)) == .soft)
        #expect(graph.freedByCancelling(.session(2)) == [.session(3), .session(4)])
        let byPid = Dictionary(uniqueKeysWithValues: BlockerAssessment.assess(snapshot, policy: SeverityPolicy(), graph: graph).map { ($0.pid!, $0) })
        let m = try #require(byPid[2])
        #expect(m.blocksAs == .queued && m.isQueuedRequest)
        #expect(m.heldMode == nil && m.queuedForMode == .accessExclusive)
        #expect(m.blockedCount == 2, "the readers queued behind it count as blocked by it")
        #expect(m.freedByCancel == [3, 4])
        #expect(m.contendedTarget == "relation public.qt")
        #expect(m.recommendedAction.contains("queued ahead of 2 for AccessExclusiveLock on relation public.qt"))
        #expect(m.recommendedAction.contains("lock_timeout") && !m.recommendedAction.contains("holding"))
        let h = try #require(byPid[1])
        #expect(h.blocksAs == .holder && !h.isQueuedRequest && h.heldMode == .accessShare && h.queuedForMode == nil)

        let tree = BlockingForestRenderer().render(snapshot, forest: graph.forest, assessments: Array(byPid.values))
        let mLine = try #require(tree.split(separator: "\n").first { $0.contains("pid 2 ") })
        #expect(mLine.contains("queued ahead of 2 for AccessExclusiveLock on relation public.qt"))
        #expect(!tree.contains("holds AccessExclusiveLock"))
        #expect(tree.contains("holds AccessShareLock on relation public.qt"))
    }

    @Test func aBlockerCanBeHardForSomeWaitersAndSoftForOthers() throws {
        // 1 holds RowExclusive on qt and waits for AccessExclusive on qt (upgrade behind 9's
        // AccessShare). 2 wants Share (conflicts with what 1 holds: hard); 3 wants AccessShare
        // (conflicts only with 1's queued request: soft).
        var one = Fixture.session(1)
        one.waitEventType = "Lock"
        one.blockedBy = [9]
        var two = Fixture.session(2), three = Fixture.session(3)
        two.waitEventType = "Lock"; two.blockedBy = [1]
        three.waitEventType = "Lock"; three.blockedBy = [1]
        let snapshot = LockSnapshot(capturedAt: Fixture.now, backends: [Fixture.session(9, state: .idleInTransaction), one, two, three], locks: [
            Self.relationLock(9, .accessShare, granted: true), Self.relationLock(1, .rowExclusive, granted: true),
            Self.relationLock(1, .accessExclusive, granted: false), Self.relationLock(2, .share, granted: false),
            Self.relationLock(3, .accessShare, granted: false),
        ])
        let a = try #require(BlockerAssessment.assess(snapshot, policy: SeverityPolicy()).first { $0.pid == 1 })
        #expect(a.blocksAs == .holderAndQueued)
        #expect(a.heldMode == .rowExclusive && a.queuedForMode == .accessExclusive)
        #expect(a.freedByCancel == [3], "2 still waits for the RowExclusiveLock that 1's transaction keeps")
    }
}

/// The queued-request branch of the one kill rule.
@Suite struct QueuedRequestRuleTests {
    static func assessments(_ snapshot: LockSnapshot = BlockKindTests.ddlPileUp()) -> [BlockerAssessment] {
        BlockerAssessment.assess(snapshot, policy: SeverityPolicy())
    }

    static func policy(_ tweak: (inout ResolvePolicy) -> Void = { _ in }) -> ResolvePolicy {
        KillRuleTests.on { p in
            p.minSeverity = .low
            p.killThresholdSeconds = 1
            tweak(&p)
        }
    }

    @Test func offByDefaultAndTheReasonSaysHowToTurnItOn() {
        let answers = KillRuleTests.rule(Self.policy(), Self.assessments())
        #expect(answers[2] == .ineligible(.queuedRequestOff))
        #expect(KillIneligibility.queuedRequestOff.description.contains("resolve.cancel_queued_after_seconds"))
        #expect(KillIneligibility.queuedRequestOff.description.contains("--cancel-queued-after"))
        #expect(answers[1] == .eligible(.terminateIdle(.idleInTransaction)), "with the option off the holder is judged as before")
    }

    @Test func whenOnTheQueuedRequestIsCancelledFirstAndTheHolderWaitsItsTurn() {
        let decisions = Self.policy { $0.cancelQueuedAfterSeconds = 1 }.decide(Self.assessments(), scope: SignalScope(), memory: .init(), now: Fixture.now)
        let byPid = Dictionary(uniqueKeysWithValues: decisions.map { ($0.assessment.pid!, $0) })
        #expect(byPid[2]?.eligibility == .eligible(.cancelQueuedRequest))
        #expect(byPid[2]?.action == .cancel && byPid[2]?.decision == "would_cancel")
        #expect(byPid[1]?.eligibility == .ineligible(.queuedRequestFirst(pid: 2)))
        #expect(decisions.map(\.assessment.pid) == Self.assessments().map(\.pid), "decisions keep the worst-first order")
    }

    @Test func theCapGoesToTheQueuedRequestBeforeTheWorseHolder() {
        let answers = KillRuleTests.rule(Self.policy { $0.cancelQueuedAfterSeconds = 1; $0.maxActionsPerCycle = 1 }, Self.assessments())
        #expect(answers[2] == .eligible(.cancelQueuedRequest))
        #expect(answers[1] == .ineligible(.queuedRequestFirst(pid: 2)))
    }

    @Test func itMustHaveWaitedLongEnough() {
        let answers = KillRuleTests.rule(Self.policy { $0.cancelQueuedAfterSeconds = 60 }, Self.assessments())
        #expect(answers[2] == .ineligible(.queuedRequestWaitedLess(60)))
        #expect(answers[1] == .eligible(.terminateIdle(.idleInTransaction)))
    }

    @Test func theOtherPartsOfTheRuleStillApply() {
        let excluded = KillRuleTests.rule(Self.policy { $0.cancelQueuedAfterSeconds = 1; $0.excludeApplications = ["web"] }, Self.assessments())
        #expect(excluded[2] == .ineligible(.excluded(.application, "web")))
        let severe = KillRuleTests.rule(Self.policy { $0.cancelQueuedAfterSeconds = 1; $0.minSeverity = .critical }, Self.assessments())
        #expect(severe[2] == .ineligible(.belowMinSeverity(.critical)))
        let dry = Self.policy { $0.cancelQueuedAfterSeconds = 1; $0.dryRun = false }
            .decide(Self.assessments(), scope: SignalScope(ownPids: [2]), memory: .init(), now: Fixture.now)
        #expect(dry.first { $0.assessment.pid == 2 }?.eligibility == .ineligible(.protected(.lockvault)))
    }

    @Test func aQueuedRequestWhoseWaitersAlsoWaitForTheHolderIsSkipped() {
        // H holds ShareLock (LOCK TABLE … IN SHARE MODE); M waits for AccessExclusiveLock; W's
        // RowExclusiveLock conflicts with both, so cancelling M would not let W through.
        var h = Fixture.session(1, state: .idleInTransaction)
        h.applicationName = "report"
        var m = Fixture.session(2), w = Fixture.session(3)
        m.waitEventType = "Lock"; m.blockedBy = [1]
        w.waitEventType = "Lock"; w.blockedBy = [1, 2]
        let snapshot = LockSnapshot(capturedAt: Fixture.now, backends: [h, m, w], locks: [
            BlockKindTests.relationLock(1, .share, granted: true), BlockKindTests.relationLock(2, .accessExclusive, granted: false, waitedSeconds: 20),
            BlockKindTests.relationLock(3, .rowExclusive, granted: false),
        ])
        let answers = KillRuleTests.rule(Self.policy { $0.cancelQueuedAfterSeconds = 1 }, Self.assessments(snapshot))
        #expect(answers[2] == .ineligible(.queuedRequestFreesNoOne))
        #expect(answers[1] == .eligible(.terminateIdle(.idleInTransaction)))
    }
}

extension LockMode {
    /// The eight modes of the conflict table, weakest first.
    static let tableModes: [LockMode] = [.accessShare, .rowShare, .rowExclusive, .shareUpdateExclusive, .share,
                                                    .shareRowExclusive, .exclusive, .accessExclusive]
}
