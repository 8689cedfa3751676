import Foundation
import Testing
@testable import LockvaultCore

/// `pg_blocking_pids()` computed from the locks: holders of a conflicting granted lock, and
/// waiters ahead in the queue with a conflicting request.
@Suite struct LockQueueTests {
    static func lock(_ pid: Int32?, _ mode: LockMode, granted: Bool, waited: Double? = nil, relation: UInt32 = 100) -> LockRecord {
        LockRecord(pid: pid, lockType: .relation, mode: mode, granted: granted, waitStart: waited.map { Fixture.now.addingTimeInterval(-$0) },
                   databaseOID: 5, relationOID: relation)
    }

    @Test func theMigrationPileUp() {
        // H reads; M waits for AccessExclusive (30 s); readers queue behind M (20 s, 10 s).
        let locks = [Self.lock(1, .accessShare, granted: true), Self.lock(2, .accessExclusive, granted: false, waited: 30),
                     Self.lock(3, .accessShare, granted: false, waited: 20), Self.lock(4, .accessShare, granted: false, waited: 10)]
        #expect(LockQueue.blockers(of: [2, 3, 4], locks: locks) == [2: [1], 3: [2], 4: [2]],
                "the readers don't conflict with each other or with H, only with M's request ahead of them")
    }

    @Test func onlyWaitersAheadCount() {
        // 2 and 3 both want AccessExclusive; 2 is ahead: 3 waits for 1 (holder) and 2 (queued), 2 for 1 only.
        let locks = [Self.lock(1, .rowExclusive, granted: true), Self.lock(2, .accessExclusive, granted: false, waited: 9),
                     Self.lock(3, .accessExclusive, granted: false, waited: 5)]
        #expect(LockQueue.blockers(of: [2, 3], locks: locks) == [2: [1], 3: [1, 2]])
    }

    @Test func aWaitJustBegunIsLastInTheQueue() {
        let locks = [Self.lock(1, .exclusive, granted: true), Self.lock(2, .exclusive, granted: false, waited: nil),
                     Self.lock(3, .exclusive, granted: false, waited: 1)]
        #expect(LockQueue.blockers(of: [2, 3], locks: locks) == [2: [1, 3], 3: [1]])
    }

    @Test func overTheWholeConflictTable() {
        for held in LockMode.tableModes {
            for requested in LockMode.tableModes {
                let found = LockQueue.blockers(of: [2], locks: [Self.lock(1, held, granted: true), Self.lock(2, requested, granted: false, waited: 1)])
                #expect(found[2] == (held.conflicts(with: requested) ? [1] : nil), "holds \(held), wants \(requested)")
                let queued = LockQueue.blockers(of: [2], locks: [Self.lock(1, held, granted: false, waited: 5), Self.lock(2, requested, granted: false, waited: 1)])
                #expect(queued[2] == (held.conflicts(with: requested) ? [1] : nil), "queued \(held) ahead, wants \(requested)")
            }
        }
    }

    @Test func parallelGroupsPreparedTransactionsAndOtherObjects() {
        // 7 is a worker of 2: it never blocks its leader. A prepared transaction (pid nil) is 0.
        // A lock on another relation says nothing.
        let locks = [Self.lock(7, .accessExclusive, granted: true), Self.lock(nil, .share, granted: true),
                     Self.lock(9, .accessExclusive, granted: true, relation: 200), Self.lock(2, .rowExclusive, granted: false, waited: 3)]
        #expect(LockQueue.blockers(of: [2], locks: locks, leaderOf: [7: 2]) == [2: [0]])
        let xid = [LockRecord(pid: 1, lockType: .transactionid, mode: .exclusive, granted: true, transactionID: "731"),
                   LockRecord(pid: 2, lockType: .transactionid, mode: .share, granted: false, waitStart: Fixture.now, transactionID: "731")]
        #expect(LockQueue.blockers(of: [2], locks: xid) == [2: [1]])
    }
}
