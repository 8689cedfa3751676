import Foundation
import Testing
@testable import LockvaultCore

/// Hand-built snapshots: `waits(pid, on: [...], since:)` makes a Lock waiter.
enum Fixture {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func session(_ pid: Int32, state: BackendState = .active, user: String = "app", superuser: Bool = false,
                        leader: Int32? = nil, type: String = "client backend") -> BackendActivity {
        BackendActivity(pid: pid, backendStart: now.addingTimeInterval(-3600), backendType: type, database: "shop", user: user,
                        applicationName: "web", state: state, stateChange: now.addingTimeInterval(-1), leaderPid: leader, isSuperuser: superuser)
    }

    static func waits(_ pid: Int32, on blockers: [Int32], since seconds: Double, leader: Int32? = nil) -> (BackendActivity, LockRecord) {
        var b = session(pid, leader: leader)
        b.waitEventType = "Lock"
        b.waitEvent = "relation"
        b.blockedBy = blockers
        let lock = LockRecord(pid: pid, lockType: .relation, mode: .accessShare, granted: false, waitStart: now.addingTimeInterval(-seconds),
                              databaseOID: 5, databaseName: "shop", relationOID: 100, relationName: "public.orders")
        return (b, lock)
    }

    static func holds(_ pid: Int32, _ mode: LockMode = .accessExclusive) -> LockRecord {
        LockRecord(pid: pid, lockType: .relation, mode: mode, granted: true, databaseOID: 5, databaseName: "shop", relationOID: 100, relationName: "public.orders")
    }

    static func snapshot(sessions: [BackendActivity], waiters: [(BackendActivity, LockRecord)], locks: [LockRecord] = [],
                         prepared: [PreparedTransaction] = []) -> LockSnapshot {
        LockSnapshot(capturedAt: now, backends: sessions + waiters.map(\.0), locks: locks + waiters.map(\.1), preparedTransactions: prepared)
    }
}

@Suite struct WaitGraphTests {
    @Test func chainOfThree() {
        let s = Fixture.snapshot(sessions: [Fixture.session(1)], waiters: [Fixture.waits(2, on: [1], since: 30), Fixture.waits(3, on: [2], since: 10)],
                                 locks: [Fixture.holds(1)])
        let g = WaitGraph(s)
        #expect(g.rootBlockers == [.session(1)])
        #expect(g.directlyBlocked(by: .session(1)) == [.session(2)])
        #expect(g.transitivelyBlocked(by: .session(1)) == [.session(2), .session(3)])
        #expect(g.longestWait(under: .session(1), now: Fixture.now) == 30)
        #expect(g.cycles.isEmpty)
        #expect(g.forest == [BlockingTree(participant: .session(1), waiters: [BlockingTree(participant: .session(2), waiters: [BlockingTree(participant: .session(3), waiters: [])])])])
    }

    @Test func fanOut() {
        let s = Fixture.snapshot(sessions: [Fixture.session(1)], waiters: (2...6).map { Fixture.waits($0, on: [1], since: Double($0)) })
        let g = WaitGraph(s)
        #expect(g.transitivelyBlocked(by: .session(1)).count == 5)
        #expect(g.longestWait(under: .session(1), now: Fixture.now) == 6)
        #expect(g.rootBlockers == [.session(1)])
    }

    @Test func diamondCountsEachSessionOnce() {
        // 4 waits on 2 and 3, which both wait on 1.
        let s = Fixture.snapshot(sessions: [Fixture.session(1)],
                                 waiters: [Fixture.waits(2, on: [1], since: 5), Fixture.waits(3, on: [1], since: 5), Fixture.waits(4, on: [2, 3], since: 5)])
        let g = WaitGraph(s)
        #expect(g.transitivelyBlocked(by: .session(1)) == [.session(2), .session(3), .session(4)])
        #expect(g.blockers(of: .session(4)) == [.session(2), .session(3)])
        #expect(g.forest.count == 1)
        #expect(g.forest[0].waiters.map(\.participant) == [.session(2), .session(3)])
        // 4 is expanded under 2 and shown as a reference under 3.
        #expect(g.forest[0].waiters[0].waiters == [BlockingTree(participant: .session(4), waiters: [])])
        #expect(g.forest[0].waiters[1].waiters == [BlockingTree(participant: .session(4), waiters: [], expandedElsewhere: true)])
    }

    @Test func twoAndThreeCyclesAreDeadlocks() {
        let two = WaitGraph(Fixture.snapshot(sessions: [], waiters: [Fixture.waits(1, on: [2], since: 1), Fixture.waits(2, on: [1], since: 1)]))
        #expect(two.cycles == [[.session(1), .session(2)]])
        #expect(two.rootBlockers == [.session(1), .session(2)], "a closed cycle is its own root")
        #expect(two.forest.count == 2, "forest terminates on cycles")

        let three = WaitGraph(Fixture.snapshot(sessions: [], waiters: [
            Fixture.waits(1, on: [2], since: 1), Fixture.waits(2, on: [3], since: 1), Fixture.waits(3, on: [1], since: 1), Fixture.waits(4, on: [1], since: 1),
        ]))
        #expect(three.cycles == [[.session(1), .session(2), .session(3)]])
        #expect(three.transitivelyBlocked(by: .session(1)) == [.session(2), .session(3), .session(4)])
    }

    @Test func parallelWorkersAreFoldedIntoTheirLeader() {
        // Leader 10 with worker 11 waits on 1; worker 21 of leader 20 holds what 30 waits for.
        let s = Fixture.snapshot(
            sessions: [Fixture.session(1), Fixture.session(10), Fixture.session(20), Fixture.session(21, leader: 20, type: "parallel worker")],
            waiters: [Fixture.waits(11, on: [1], since: 7, leader: 10), Fixture.waits(30, on: [21], since: 3)]
        )
        let g = WaitGraph(s)
        #expect(g.blockers(of: .session(10)) == [.session(1)])
        #expect(g.blockers(of: .session(30)) == [.session(20)])
        #expect(g.waitStarts[.session(10)] == Fixture.now.addingTimeInterval(-7))
        #expect(!g.blockers.contains(.session(21)))
    }

    @Test func waiterOnSeveralBlockers() {
        let s = Fixture.snapshot(sessions: [Fixture.session(1), Fixture.session(2)], waiters: [Fixture.waits(3, on: [1, 2], since: 4)])
        let g = WaitGraph(s)
        #expect(g.rootBlockers == [.session(1), .session(2)])
        #expect(g.blockers(of: .session(3)) == [.session(1), .session(2)])
    }

    @Test func preparedTransactionBlockerIsNamedByGid() {
        let prepared = PreparedTransaction(gid: "batch-42", transactionID: "777", owner: "etl", database: "shop", prepared: Fixture.now.addingTimeInterval(-600))
        let other = PreparedTransaction(gid: "other", transactionID: "888", owner: "etl", database: "shop", prepared: Fixture.now)
        let locks = [
            LockRecord(pid: nil, lockType: .transactionid, mode: .exclusive, granted: true, transactionID: "777", virtualTransaction: "-1/777"),
            LockRecord(pid: nil, lockType: .relation, mode: .accessExclusive, granted: true, databaseOID: 5, relationOID: 100, relationName: "public.orders", virtualTransaction: "-1/777"),
            LockRecord(pid: nil, lockType: .transactionid, mode: .exclusive, granted: true, transactionID: "888", virtualTransaction: "-1/888"),
        ]
        let s = Fixture.snapshot(sessions: [], waiters: [Fixture.waits(5, on: [0], since: 20)], locks: locks, prepared: [prepared, other])
        let g = WaitGraph(s)
        #expect(g.blockers(of: .session(5)) == [.prepared("batch-42")])
        let a = BlockerAssessment.assess(s, policy: SeverityPolicy())
        #expect(a.count == 1)
        #expect(a[0].preparedTransaction?.gid == "batch-42")
        #expect(a[0].heldMode == .accessExclusive)
        #expect(a[0].recommendedAction.contains("ROLLBACK PREPARED 'batch-42'"))
    }

    @Test func aLongQueueStaysLinear() {
        // Each of 300 waiters waits for the holder and everyone ahead of it (≈45k edges).
        var waiters: [(BackendActivity, LockRecord)] = []
        for i in 1...300 {
            let ahead: [Int32] = (1..<i).map { Int32($0 + 1) }
            waiters.append(Fixture.waits(Int32(i + 1), on: [Int32(1)] + ahead, since: Double(i)))
        }
        let g = WaitGraph(Fixture.snapshot(sessions: [Fixture.session(1)], waiters: waiters))
        func count(_ t: BlockingTree) -> Int { 1 + t.waiters.map(count).reduce(0, +) }
        let nodes = g.forest.map(count).reduce(0, +)
        #expect(nodes <= 301 + 300 * 300)
        let blocked = g.transitivelyBlocked(by: Participant.session(1))
        #expect(blocked.count == 300)
    }

    @Test func emptySnapshot() {
        let g = WaitGraph(LockSnapshot(capturedAt: Fixture.now))
        #expect(g.isEmpty && g.rootBlockers.isEmpty && g.cycles.isEmpty && g.forest.isEmpty)
    }
}

@Suite struct AdvisoryKeyTests {
    @Test(arguments: [Int64(42), -5, 0, Int64.max, Int64.min, -1_985_623_456])
    func bigintKeysRoundTrip(_ key: Int64) {
        let classID = UInt32(truncatingIfNeeded: UInt64(bitPattern: key) >> 32)
        let objID = UInt32(truncatingIfNeeded: UInt64(bitPattern: key))
        #expect(AdvisoryKey(classID: classID, objID: objID, objSubID: 1) == .bigint(key))
    }

    @Test func documentedNegativeKeyAndPairs() {
        #expect(AdvisoryKey(classID: 4_294_967_295, objID: 4_294_967_291, objSubID: 1) == .bigint(-5))
        #expect(AdvisoryKey(classID: 4_294_967_295, objID: 7, objSubID: 2) == .pair(-1, 7))
        #expect(AdvisoryKey(classID: 1, objID: 2, objSubID: 2)?.description == "(1, 2)")
        #expect(AdvisoryKey(classID: 1, objID: 2, objSubID: 3) == nil)
    }
}
