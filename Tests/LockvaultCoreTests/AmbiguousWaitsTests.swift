import Foundation
import Testing
@testable import LockvaultCore

/// Which waits pg_locks cannot order, and so are asked of the server (`pg_blocking_pids()`).
@Suite struct AmbiguousWaitsTests {
    static func lock(_ pid: Int32, _ mode: LockMode, granted: Bool, waited: Double? = nil, relation: UInt32 = 100) -> LockRecord {
        LockQueueTests.lock(pid, mode, granted: granted, waited: granted ? nil : waited, relation: relation)
    }

    static func find(_ waiters: [Int32], _ locks: [LockRecord], leaderOf: [Int32: Int32] = [:], timeout: Double = 1) -> [Int32: AmbiguousWaits.Reason] {
        AmbiguousWaits.find(waiters: waiters, locks: locks, leaderOf: leaderOf, now: Fixture.now, deadlockTimeout: timeout)
    }

    /// S1 updates t; S2 reads t; S3 asks ACCESS EXCLUSIVE and waits; S2 asks SHARE. ProcSleep
    /// puts S2 ahead of S3 (S2 holds a lock S3's request conflicts with): `pg_blocking_pids(S2)`
    /// is {S1}, while `waitstart` order says {S1, S3} — and a cycle S2 → S3 → S2 that never was.
    @Test func theWaiterThatHoldsTheObjectJumpsTheQueue() {
        let locks = [Self.lock(1, .rowExclusive, granted: true), Self.lock(2, .accessShare, granted: true),
                     Self.lock(3, .accessExclusive, granted: false, waited: 0.5), Self.lock(2, .share, granted: false, waited: 0.2)]
        #expect(LockQueue.blockers(of: [2, 3], locks: locks) == [2: [1, 3], 3: [1, 2]], "what waitstart order alone says")
        #expect(Self.find([2, 3], locks) == [2: .waiterHoldsTheObject, 3: .waiterHoldsTheObject],
                "every waiter on the object: the one that jumped and those it jumped")
        #expect(Self.find([3], locks) == [3: .waiterHoldsTheObject], "only the waiters the cycle needs")
    }

    @Test func aParallelGroupHoldsWhatItsLeaderHolds() {
        // Leader 10 holds the table; its worker 11 waits on it behind 20's request.
        let locks = [Self.lock(10, .accessShare, granted: true), Self.lock(20, .accessExclusive, granted: false, waited: 0.5),
                     Self.lock(11, .share, granted: false, waited: 0.2)]
        #expect(Self.find([11, 20], locks, leaderOf: [11: 10]) == [11: .waiterHoldsTheObject, 20: .waiterHoldsTheObject])
    }

    @Test func aSoftEdgeOlderThanDeadlockTimeoutMayHaveBeenReordered() {
        // 2 waits (5 s) for ACCESS EXCLUSIVE behind holder 1; 3 queued behind 2 with a conflicting request.
        let soft = [Self.lock(1, .accessShare, granted: true), Self.lock(2, .accessExclusive, granted: false, waited: 5),
                    Self.lock(3, .accessShare, granted: false, waited: 3)]
        #expect(Self.find([2, 3], soft) == [2: .softEdgeOlderThanDeadlockTimeout, 3: .softEdgeOlderThanDeadlockTimeout])
        #expect(Self.find([2, 3], soft, timeout: 4).isEmpty, "the later of the two has not waited deadlock_timeout: the detector has not looked")
        // Two waiters whose requests do not conflict have no soft edge: nothing to reorder.
        let readers = [Self.lock(1, .accessExclusive, granted: true), Self.lock(2, .accessShare, granted: false, waited: 5),
                       Self.lock(3, .rowShare, granted: false, waited: 3)]
        #expect(Self.find([2, 3], readers).isEmpty)
        // Members of one lock group never block each other.
        let group = [Self.lock(1, .accessShare, granted: true), Self.lock(2, .accessExclusive, granted: false, waited: 5),
                     Self.lock(3, .accessExclusive, granted: false, waited: 3)]
        #expect(Self.find([2, 3], group, leaderOf: [3: 2]).isEmpty)
    }

    @Test func aWaitWithNoWaitstartHasNoPlace() {
        let locks = [Self.lock(1, .exclusive, granted: true), Self.lock(2, .exclusive, granted: false, waited: nil),
                     Self.lock(3, .exclusive, granted: false, waited: 0.1)]
        #expect(Self.find([3], locks) == [3: .waitStartUnknown])
    }

    @Test func anOrdinaryQueueIsReadFromPgLocks() {
        // The common case costs no call: a holder, one waiter; a fresh queue; another object's trouble.
        #expect(Self.find([2], [Self.lock(1, .accessExclusive, granted: true), Self.lock(2, .accessShare, granted: false, waited: 30)]).isEmpty)
        let fresh = [Self.lock(1, .accessShare, granted: true), Self.lock(2, .accessExclusive, granted: false, waited: 0.6),
                     Self.lock(3, .accessShare, granted: false, waited: 0.3)]
        #expect(Self.find([2, 3], fresh).isEmpty)
        let elsewhere = [Self.lock(1, .accessShare, granted: true, relation: 200), Self.lock(1, .share, granted: false, waited: 1, relation: 200),
                         Self.lock(5, .accessExclusive, granted: true), Self.lock(6, .accessShare, granted: false, waited: 9)]
        #expect(Self.find([6], elsewhere).isEmpty)
    }
}
