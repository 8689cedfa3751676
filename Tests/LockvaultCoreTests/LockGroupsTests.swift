import Foundation
import Testing
@testable import LockvaultCore

/// A parallel query is the one session it is: its workers' waits and holds are its leader's,
/// as `pg_blocking_pids()` reports them, everywhere a DBA reads or the resolver acts.
@Suite struct LockGroupsTests {
    static func lock(_ pid: Int32?, _ mode: LockMode, granted: Bool, waited: Double? = nil, relation: UInt32) -> LockRecord {
        LockRecord(pid: pid, lockType: .relation, mode: mode, granted: granted, waitStart: waited.map { Fixture.now.addingTimeInterval(-$0) },
                   databaseOID: 5, databaseName: "shop", relationOID: relation, relationName: "public.r\(relation)", virtualTransaction: pid.map { "\($0)/1" })
    }

    /// Leader 10 runs a parallel query: its worker 11 waits for relation 200, which 20 holds in
    /// ACCESS EXCLUSIVE (idle in transaction); the leader and its worker 12 both read relation
    /// 100, for which 30 waits in ACCESS EXCLUSIVE. The leader itself waits on IPC.
    static func parallelQuery() -> (backends: [BackendActivity], locks: [LockRecord]) {
        var leader = Fixture.session(10)
        leader.waitEventType = "IPC"
        leader.waitEvent = "ExecuteGather"
        var w11 = Fixture.session(11, leader: 10, type: "parallel worker")
        w11.waitEventType = "Lock"
        let w12 = Fixture.session(12, leader: 10, type: "parallel worker")
        var s30 = Fixture.session(30)
        s30.waitEventType = "Lock"
        let holder = Fixture.session(20, state: .idleInTransaction)
        let locks = [
            lock(10, .accessShare, granted: true, relation: 100), lock(12, .accessShare, granted: true, relation: 100),
            lock(11, .accessShare, granted: true, relation: 100),
            lock(11, .accessShare, granted: false, waited: 40, relation: 200), lock(12, .accessShare, granted: false, waited: 30, relation: 200),
            lock(20, .accessExclusive, granted: true, relation: 200),
            lock(30, .accessExclusive, granted: false, waited: 20, relation: 100),
        ]
        var backends = [leader, w11, w12, holder, s30]
        let found = LockQueue.blockers(of: [11, 12, 30], locks: locks, leaderOf: LockGroups.leaders(backends))
        for i in backends.indices { backends[i].blockedBy = found[backends[i].pid] ?? [] }
        return (backends, locks)
    }

    @Test func blockersAreNamedByTheirLeader() {
        let (backends, locks) = Self.parallelQuery()
        let found = LockQueue.blockers(of: [11, 12, 30], locks: locks, leaderOf: LockGroups.leaders(backends))
        #expect(found[30] == [10], "the worker 12 and the leader hold relation 100 as one group: pg_blocking_pids(30) = {10}")
        #expect(found[11] == [20] && found[12] == [20])
    }

    @Test func theLeaderWaitsAndHoldsForItsWorkers() {
        let (backends, locks) = Self.parallelQuery()
        let folded = LockGroups.fold(backends: backends, locks: locks)
        #expect(folded.backends.first { $0.pid == 10 }?.blockedBy == [20], "the leader's wait is recorded")
        #expect(folded.backends.filter { [11, 12].contains($0.pid) }.allSatisfy { $0.blockedBy.isEmpty })
        #expect(Set(folded.locks.compactMap(\.pid)) == [10, 20, 30], "no lock under a worker's pid")
        let leaderLocks = folded.locks.filter { $0.pid == 10 }
        #expect(leaderLocks.count == 2, "one held AccessShareLock on 100 for the group, one wait for 200")
        #expect(leaderLocks.first { !$0.granted }?.waitStart == Fixture.now.addingTimeInterval(-40), "the group waits since its first member did")
        #expect(leaderLocks.first(where: \.granted)?.virtualTransaction == "10/1", "the leader's own transaction")
    }

    @Test func graphTreeSeverityAndResolverNameLeadersOnly() {
        let (backends, locks) = Self.parallelQuery()
        let folded = LockGroups.fold(backends: backends, locks: locks)
        let snapshot = LockSnapshot(capturedAt: Fixture.now, backends: folded.backends, locks: folded.locks)
        let graph = WaitGraph(snapshot)
        let workers: Set<Participant> = [.session(11), .session(12)]
        #expect(graph.edges.map { "\($0.waiter)→\($0.blocker)" } == ["pid 10→pid 20", "pid 30→pid 10"])
        #expect(graph.kind(waiter: .session(30), blocker: .session(10)) == .hard)
        #expect(graph.cycles.isEmpty)
        #expect(graph.rootBlockers == [.session(20)])
        let assessments = BlockerAssessment.assess(snapshot, policy: SeverityPolicy(), graph: graph)
        #expect(Set(assessments.map(\.participant)) == [.session(10), .session(20)])
        #expect(assessments.allSatisfy { Set($0.directlyBlocked + $0.transitivelyBlocked).isDisjoint(with: [11, 12]) })
        #expect(assessments.first { $0.participant == .session(20) }?.transitivelyBlocked == [10, 30])
        #expect(assessments.first { $0.participant == .session(10) }?.heldMode == .accessShare)
        let tree = BlockingForestRenderer().render(snapshot, forest: graph.forest, assessments: assessments)
        #expect(!tree.contains("pid 11") && !tree.contains("pid 12"), "\(tree)")
        var policy = ResolvePolicy()
        policy.enabled = true
        policy.minSeverity = .low
        policy.killThresholdSeconds = 0
        policy.maxActionsPerCycle = 10
        let decisions = policy.decide(assessments, scope: SignalScope(), memory: .init(), now: Fixture.now)
        #expect(decisions.allSatisfy { !workers.contains($0.assessment.participant) })
        #expect(decisions.filter(\.eligibility.isEligible).map(\.assessment.pid) == [20], "the root, never a worker")
        #expect(decisions.first { $0.assessment.pid == 10 }?.eligibility == .ineligible(.notRoot(roots: [.session(20)])))
    }

    @Test func withoutParallelWorkersNothingMoves() {
        let backends = [Fixture.session(1), Fixture.waits(2, on: [1], since: 5).0]
        let locks = [Fixture.holds(1), Fixture.waits(2, on: [1], since: 5).1]
        let folded = LockGroups.fold(backends: backends, locks: locks)
        #expect(folded.backends == backends && folded.locks == locks)
    }
}
