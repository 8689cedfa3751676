import Foundation
import LockvaultCore
import Testing

/// How a cycle learns new waits, and when it reads the whole lock table, chosen from what it knows.
@Suite struct LockReadPlanTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static let pg15 = ServerCapabilities(serverVersionNum: 150018)

    static func facts(locks: Int?, lastReading: Double? = 0, now: Double = 10, newWaits: Int = 1, unread: Int = 0,
                      forced: LockReadPlan.Way? = nil, capabilities: ServerCapabilities = pg15) -> LockReadPlan.Facts {
        .init(now: t0 + now, capabilities: capabilities, locksAtLastCount: locks, lastLockTableReading: lastReading.map { t0 + $0 },
              lockTableInterval: 60, expectedNewWaits: newWaits, unreadWaits: unread, forced: forced)
    }

    @Test func aFirstCycleReadsTheWholeLockTableAndCountsIt() {
        #expect(LockReadPlan.choose(Self.facts(locks: nil, lastReading: nil)) == LockReadPlan(newWaits: .pgLocks, lockTableReading: true))
        #expect(LockReadPlan.choose(Self.facts(locks: 400_000, lastReading: nil)).lockTableReading, "never read: read now")
    }

    @Test func aCheapPassIsTakenForItsDetailAndTheReadingKeepsItsInterval() {
        // 1,500 locks: 1.5 ms, under the 2 ms a pass may always cost.
        let plan = LockReadPlan.choose(Self.facts(locks: 1_500))
        #expect(plan == LockReadPlan(newWaits: .pgLocks, lockTableReading: false))
        #expect(LockReadPlan.choose(Self.facts(locks: 1_500, now: 59)).lockTableReading == false)
        #expect(LockReadPlan.choose(Self.facts(locks: 1_500, now: 60)).lockTableReading)
    }

    @Test func aPassDearerThanTheCallsItReplacesGivesWayToPgBlockingPids() {
        // 400,000 locks: 0.4 s a pass, against 0.1 ms a call.
        #expect(LockReadPlan.choose(Self.facts(locks: 400_000, newWaits: 1)).newWaits == .blockingPids)
        #expect(LockReadPlan.choose(Self.facts(locks: 400_000, newWaits: 500)).newWaits == .blockingPids)
        // 40,000 locks (40 ms) against 500 new waits (50 ms of calls): the pass is cheaper.
        #expect(LockReadPlan.choose(Self.facts(locks: 40_000, newWaits: 500)).newWaits == .pgLocks)
        #expect(LockReadPlan.choose(Self.facts(locks: 40_000, newWaits: 10)).newWaits == .blockingPids)
    }

    @Test func dearPassesAreSpacedByTheirCost() {
        // 0.4 s a pass at 0.1 % of a core: one every 400 s, not every minute.
        #expect(!LockReadPlan.choose(Self.facts(locks: 400_000, now: 60)).lockTableReading)
        #expect(!LockReadPlan.choose(Self.facts(locks: 400_000, now: 399)).lockTableReading)
        #expect(LockReadPlan.choose(Self.facts(locks: 400_000, now: 401)).lockTableReading)
        // 40,000 locks (40 ms): the configured minute is the longer.
        #expect(!LockReadPlan.choose(Self.facts(locks: 40_000, now: 59)).lockTableReading)
        #expect(LockReadPlan.choose(Self.facts(locks: 40_000, now: 60)).lockTableReading)
    }

    @Test func waitsLackingTheirDetailsBringTheNextPassForwardWithinItsBudget() {
        // 40,000 locks: a pass every 40 s while answered waits lack target and mode.
        #expect(!LockReadPlan.choose(Self.facts(locks: 40_000, now: 39, unread: 2)).lockTableReading)
        #expect(LockReadPlan.choose(Self.facts(locks: 40_000, now: 41, unread: 2)).lockTableReading)
        // Cheap: at once.
        #expect(LockReadPlan.choose(Self.facts(locks: 1_000, now: 1, unread: 1)).lockTableReading)
        // A forced way keeps what it learnt until the configured reading.
        #expect(!LockReadPlan.choose(Self.facts(locks: 1_000, now: 1, unread: 1, forced: .blockingPids)).lockTableReading)
    }

    @Test func aForcedWayIsTaken() {
        #expect(LockReadPlan.choose(Self.facts(locks: 10, forced: .blockingPids)).newWaits == .blockingPids)
        #expect(LockReadPlan.choose(Self.facts(locks: 400_000, forced: .pgLocks)).newWaits == .pgLocks)
        #expect(LockReadPlan.choose(Self.facts(locks: nil, lastReading: nil, forced: .blockingPids)).newWaits == .blockingPids)
    }

    @Test func withoutWaitstartOnlyTheServerCanOrderAQueue() {
        let old = ServerCapabilities(serverVersionNum: 130_011)
        #expect(LockReadPlan.choose(Self.facts(locks: 10, capabilities: old)).newWaits == .blockingPids)
    }
}

/// The kind of an edge pg_blocking_pids() gave, from the lock types each side waits for.
@Suite struct AnsweredWaitsTests {
    @Test func aBlockerWaitingForNoLockHolds() {
        #expect(AnsweredWaits.kind(waiterWaits: ["relation"], blocker: 7, blockerWaits: []) == .hard)
    }

    @Test func aBlockerWaitingForAnotherLockTypeIsNotInTheQueue() {
        // A row's first waiter holds the tuple lock and waits for the updater's transaction.
        #expect(AnsweredWaits.kind(waiterWaits: ["tuple"], blocker: 7, blockerWaits: ["transactionid"]) == .hard)
        #expect(AnsweredWaits.kind(waiterWaits: ["relation"], blocker: 7, blockerWaits: ["advisory"]) == .hard)
    }

    @Test func onATransactionIdEveryWaiterAsksShareLockSoNoOneIsQueuedAhead() {
        #expect(AnsweredWaits.kind(waiterWaits: ["transactionid"], blocker: 7, blockerWaits: ["transactionid"]) == .hard)
        #expect(AnsweredWaits.kind(waiterWaits: ["virtualxid"], blocker: 7, blockerWaits: ["virtualxid"]) == .hard)
    }

    @Test func aTupleWaiterBehindAnotherTupleWaiterIsQueued() {
        #expect(AnsweredWaits.kind(waiterWaits: ["tuple"], blocker: 7, blockerWaits: ["tuple"]) == .soft)
    }

    @Test func whatOnlyPgLocksCanTell() {
        // Both wait for relations: the blocker may hold the waiter's table while it waits for another.
        #expect(AnsweredWaits.kind(waiterWaits: ["relation"], blocker: 7, blockerWaits: ["relation"]) == nil)
        #expect(AnsweredWaits.kind(waiterWaits: ["advisory"], blocker: 7, blockerWaits: ["advisory"]) == nil)
        #expect(AnsweredWaits.kind(waiterWaits: ["tuple", "relation"], blocker: 7, blockerWaits: ["tuple"]) == nil)
        // A prepared transaction holds, but which one only pg_locks says.
        #expect(AnsweredWaits.kind(waiterWaits: ["transactionid"], blocker: 0, blockerWaits: []) == nil)
    }

    @Test func kindsAreByLockGroupLeaders() {
        let leader = BackendActivity(pid: 10, waitEventType: "IPC", waitEvent: "ExecuteGather")
        let worker = BackendActivity(pid: 11, waitEventType: "Lock", waitEvent: "relation", leaderPid: 10)
        let blocker = BackendActivity(pid: 7, state: .idleInTransaction)
        let queued = BackendActivity(pid: 8, waitEventType: "Lock", waitEvent: "relation")
        let kinds = AnsweredWaits.kinds(of: [11: [7, 8]], backends: [leader, worker, blocker, queued])
        #expect(kinds == [10: [7: .hard]], "the waiting worker is its leader; 8's kind is left to pg_locks")
    }
}
