import Foundation
import Testing
@testable import LockvaultCore

/// What the sampler carries between cycles so that a steady cycle returns only what changed.
@Suite struct SamplerMemoryTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func longTransaction(_ pid: Int32, state: BackendState = .idleInTransaction, query: String = "SELECT 1") -> BackendActivity {
        BackendActivity(pid: pid, backendStart: t0 - 100, database: "shop", state: state, transactionStart: t0 - 60, query: query)
    }

    @Test func aLongTransactionNotReturnedAgainIsCarriedWhileTheStatementSaysItIsStillOpen() {
        var memory = SamplerMemory()
        #expect(memory.previousCapture == nil, "the first cycle reads everything")
        let first = memory.absorb(capturedAt: t0, backends: [longTransaction(7)], keptLongTransactions: [],
                                  sessions: [(7, "shop", t0 - 60)], allSessions: true, holdThreshold: 5)
        #expect(first.map(\.pid) == [7])
        #expect(memory.previousCapture == t0)

        // Steady: the statement didn't return pid 7 (unchanged), but says it is still open.
        let steady = memory.absorb(capturedAt: t0 + 1, backends: [], keptLongTransactions: [7],
                                   sessions: [], allSessions: false, holdThreshold: 5)
        #expect(steady == [longTransaction(7)], "the DBA still sees the long transaction")

        // Its state changed: the statement returns the new row, which replaces the carried one.
        let changed = memory.absorb(capturedAt: t0 + 2, backends: [longTransaction(7, state: .active, query: "UPDATE t")], keptLongTransactions: [7],
                                    sessions: [], allSessions: false, holdThreshold: 5)
        #expect(changed.count == 1 && changed[0].query == "UPDATE t")
        let after = memory.absorb(capturedAt: t0 + 3, backends: [], keptLongTransactions: [7], sessions: [], allSessions: false, holdThreshold: 5)
        #expect(after.first?.query == "UPDATE t", "the carried row is the latest one returned")

        // It ended (the statement no longer finds its pid with that xact_start): gone.
        let ended = memory.absorb(capturedAt: t0 + 4, backends: [], keptLongTransactions: [], sessions: [], allSessions: false, holdThreshold: 5)
        #expect(ended.isEmpty)
    }

    @Test func aShortTransactionIsNeverCarried() {
        var memory = SamplerMemory()
        let waiter = BackendActivity(pid: 9, backendStart: t0 - 10, database: "shop", transactionStart: t0 - 1, waitEventType: "Lock", blockedBy: [7])
        _ = memory.absorb(capturedAt: t0, backends: [waiter], keptLongTransactions: [9], sessions: [], allSessions: false, holdThreshold: 5)
        let next = memory.absorb(capturedAt: t0 + 1, backends: [], keptLongTransactions: [9], sessions: [], allSessions: false, holdThreshold: 5)
        #expect(next.isEmpty, "a waiter that stopped waiting is not shown as still waiting")
    }

    @Test func sessionDatabasesAreLearntOnceAndTheFullReadingDropsEndedSessions() {
        var memory = SamplerMemory()
        _ = memory.absorb(capturedAt: t0, backends: [], keptLongTransactions: [], sessions: [(1, "shop", t0 - 10), (2, "crm", t0 - 20)], allSessions: true, holdThreshold: 5)
        _ = memory.absorb(capturedAt: t0 + 1, backends: [], keptLongTransactions: [], sessions: [(3, "shop", t0 + 0.5)], allSessions: false, holdThreshold: 5)
        #expect(memory.sessionDatabases == [1: "shop", 2: "crm", 3: "shop"], "new sessions are added, known ones kept")
        #expect(memory.sessionStarts == [1: t0 - 10, 2: t0 - 20, 3: t0 + 0.5], "with their backend_start: the session's identity")
        _ = memory.absorb(capturedAt: t0 + 60, backends: [], keptLongTransactions: [], sessions: [(1, "shop", t0 - 10), (3, "shop", t0 + 0.5)], allSessions: true, holdThreshold: 5)
        #expect(memory.sessionDatabases == [1: "shop", 3: "shop"], "the once-a-minute reading forgets sessions that ended")
        #expect(memory.sessionStarts == [1: t0 - 10, 3: t0 + 0.5])
    }

    @Test func aDeadlockReportIsPlacedBySessionsThatWereOnlyCounted() {
        // pids 10 and 20 were never returned as backends (they never waited in a sampled cycle),
        // but their databases came with the sessions list.
        var tracker = DeadlockTracker()
        let snapshot = LockSnapshot(capturedAt: t0, backends: [], backendCount: 2, sessionDatabases: [10: "shop", 20: "shop"], deadlockCounts: ["shop": 1])
        _ = tracker.observe(snapshot, graph: WaitGraph(snapshot), reports: [])
        let report = DeadlockReport(detectedAt: t0 + 0.5, database: nil, user: "app", victimPid: 20,
                                    participants: [DeadlockParticipant(pid: 10, waitsFor: "ShareLock on transaction 750", blockedBy: 20, query: "UPDATE a"),
                                                   DeadlockParticipant(pid: 20, waitsFor: "ShareLock on transaction 751", blockedBy: 10, query: "UPDATE b")],
                                    context: nil)
        #expect(tracker.database(of: report, databaseNames: [:]) == "shop")
    }

    func waiter(_ pid: Int32, blockedBy: [Int32], event: String = "transactionid", queryStart: Date? = nil) -> BackendActivity {
        BackendActivity(pid: pid, backendStart: t0 - 100, database: "shop", transactionStart: t0 - 2, queryStart: queryStart ?? t0 - 2,
                        waitEventType: "Lock", waitEvent: event, blockedBy: blockedBy)
    }

    @Test func unchangedWaitersAndTheirBlockersKeepTheLocksLastReadWhenPgLocksIsNotRead() {
        var memory = SamplerMemory()
        let blocker = BackendActivity(pid: 7, backendStart: t0 - 100, database: "shop", state: .idleInTransaction, transactionStart: t0 - 3)
        let waiting = LockRecord(pid: 9, lockType: .transactionid, mode: .share, granted: false, waitStart: t0 - 2, transactionID: "750")
        let held = LockRecord(pid: 7, lockType: .transactionid, mode: .exclusive, granted: true, transactionID: "750")
        let read = memory.absorbLocks(backends: [blocker, waiter(9, blockedBy: [7])], locks: [waiting, held], locksRead: true)
        #expect(read == [waiting, held])
        #expect(memory.knownWaits == [SamplerMemory.WaitKey(waiter(9, blockedBy: [7]))], "the next statement may skip pg_locks for this wait")

        let steady = memory.absorbLocks(backends: [blocker, waiter(9, blockedBy: [7])], locks: [], locksRead: false)
        #expect(Set(steady) == [waiting, held], "the DBA sees the same wait, with its waitstart, and the blocker's lock")

        // The waiter gave up: nothing is carried for it, and the blocker is no blocker any more.
        let gone = memory.absorbLocks(backends: [blocker], locks: [], locksRead: false)
        #expect(gone.isEmpty)
        #expect(memory.knownWaits.isEmpty)
    }

    @Test func aWaitIsKnownOnlyWhileItsStatementWaitEventAndBlockersAreTheSame() {
        let w = SamplerMemory.WaitKey(waiter(9, blockedBy: [8, 7]))
        #expect(w.blockedBy == [7, 8], "sorted, as the statement compares them")
        #expect(w != SamplerMemory.WaitKey(waiter(9, blockedBy: [7])), "a blocker left or came: read again")
        #expect(w != SamplerMemory.WaitKey(waiter(9, blockedBy: [7, 8], event: "tuple")), "waits for something else: read again")
        #expect(w != SamplerMemory.WaitKey(waiter(9, blockedBy: [7, 8], queryStart: t0)), "another statement: read again")
    }

    @Test func aWaitThePgBlockingPidsAnsweredIsCarriedWithItsKindsUntilAPassReadsIt() {
        var memory = SamplerMemory()
        let blocker = BackendActivity(pid: 7, backendStart: t0 - 100, state: .idleInTransaction, transactionStart: t0 - 60)
        let w = waiter(9, blockedBy: [7], event: "tuple")
        let unread = LockRecord.unread(pid: 9, waitEvent: "tuple")
        let first = memory.absorbLocks(backends: [blocker, w], locks: [unread], locksRead: false, answered: [9], kinds: [9: [7: .hard]])
        #expect(first == [unread])
        #expect(memory.knownWaits == [SamplerMemory.WaitKey(w)], "known: the next statement carries it")
        #expect(memory.unreadWaits == 1 && memory.answeredKinds == [9: [7: .hard]])
        let carried = memory.absorbLocks(backends: [blocker, w], locks: [], locksRead: false)
        #expect(carried == [unread], "carried as it was learnt")
        #expect(memory.answeredKinds == [9: [7: .hard]])
        // A pass reads the wait: its lock and kinds come from pg_locks from now on.
        let read = LockRecord(pid: 9, lockType: .tuple, mode: .exclusive, granted: false, waitStart: t0 - 2, relationOID: 5, page: 0, tuple: 1)
        _ = memory.absorbLocks(backends: [blocker, w], locks: [read], locksRead: true)
        #expect(memory.unreadWaits == 0 && memory.answeredKinds.isEmpty)
    }

    @Test func aBlockerThatWaitsItselfIsCarriedOnceAndLocksAlreadyReturnedAreNotRepeated() {
        var memory = SamplerMemory()
        // 9 waits for 8, which waits for 7.
        let w9 = LockRecord(pid: 9, lockType: .relation, mode: .accessShare, granted: false, waitStart: t0 - 1, relationOID: 2)
        let h8 = LockRecord(pid: 8, lockType: .relation, mode: .accessExclusive, granted: true, relationOID: 2)
        let w8 = LockRecord(pid: 8, lockType: .relation, mode: .accessExclusive, granted: false, waitStart: t0 - 2, relationOID: 1)
        let h7 = LockRecord(pid: 7, lockType: .relation, mode: .accessExclusive, granted: true, relationOID: 1)
        let backends = [waiter(9, blockedBy: [8], event: "relation"), waiter(8, blockedBy: [7], event: "relation"),
                        BackendActivity(pid: 7, backendStart: t0 - 100, transactionStart: t0 - 60)]
        _ = memory.absorbLocks(backends: backends, locks: [w9, h8, w8, h7], locksRead: true)
        let steady = memory.absorbLocks(backends: backends, locks: [], locksRead: false)
        #expect(steady.count == 4 && Set(steady) == [w9, h8, w8, h7], "each lock once")
        // pid 7 is also a long transaction whose locks the long-transaction memory returned.
        let withLong = memory.absorbLocks(backends: backends, locks: [h7], locksRead: false)
        #expect(withLong.filter { $0.pid == 7 } == [h7])
    }
}

/// How old a lock wait is, known without pg_locks: from the cycle that first saw it.
@Suite struct WaitSightingTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static func wait(_ pid: Int32, query: Double = 0) -> SamplerMemory.WaitSighting {
        .init(pid: pid, backendStart: t0.addingTimeInterval(-100), queryStart: t0.addingTimeInterval(query), waitEvent: "relation")
    }

    @Test func aWaitIsAsOldAsItsFirstSightingAndForgottenWhenItEnds() {
        var memory = SamplerMemory()
        #expect(memory.sighted([Self.wait(1)], resolved: [], at: Self.t0) == 0)
        #expect(memory.sighted([Self.wait(1), Self.wait(2)], resolved: [], at: Self.t0 + 1) == 1)
        #expect(memory.waitFirstSeen[Self.wait(2)] == Self.t0 + 1)
        #expect(memory.sighted([Self.wait(2)], resolved: [], at: Self.t0 + 2) == 1, "1 ended")
        #expect(memory.waitFirstSeen[Self.wait(1)] == nil)
        #expect(memory.sighted([Self.wait(2, query: 2)], resolved: [], at: Self.t0 + 3) == 0, "another statement is another wait")
    }

    @Test func aResolvedWaitStaysResolvedWhileItLasts() {
        var memory = SamplerMemory()
        _ = memory.sighted([Self.wait(1)], resolved: [1], at: Self.t0)   // a first cycle resolves what it sees
        #expect(memory.resolvedWaits == [Self.wait(1)])
        #expect(memory.sighted([Self.wait(1)], resolved: [], at: Self.t0 + 0.2) == 0, "not counted among the short ones")
        #expect(memory.resolvedWaits == [Self.wait(1)])
        _ = memory.sighted([Self.wait(1, query: 5)], resolved: [], at: Self.t0 + 6)
        #expect(memory.resolvedWaits.isEmpty, "its next statement's wait starts young")
    }
}
