import Foundation
import LockvaultCore
import LockvaultEngine
import PostgresClient
import Testing

extension LiveDatabaseSuite {
    /// Issue 16: a steady cycle returns only what changed and carries the rest. These tests put
    /// the carrying reader next to one that reads everything every cycle (the path before), on
    /// the same sessions, and require the same edges, locks and backends.
    @Suite struct SnapshotPathsLiveTests {
        /// What a DBA is shown of one snapshot: who waits for whom, which locks (with waitstart),
        /// and the backends that matter.
        struct Seen: Equatable {
            var edges: Set<[Int32]>
            var locks: Set<LockRecord>
            var backends: Set<Int32>
            /// Of this test's sessions only (other tests share the cluster).
            init(_ s: LockSnapshot, only: Set<Int32>) {
                edges = Set(s.backends.filter { only.contains($0.pid) }.flatMap { b in b.blockedBy.map { [b.pid, $0] } })
                locks = Set(s.locks.filter { $0.pid.map(only.contains) ?? false })
                backends = Set(s.backends.map(\.pid)).intersection(only)
            }
        }

        @Test func carriedCyclesSeeTheSameWaitsAsReadingEverything() async throws {
            try await EngineScenario.run { s in
                try s.admin.executeScript("CREATE TABLE t1 (id int); CREATE TABLE t2 (id int); CREATE TABLE acct (id int PRIMARY KEY, n int); INSERT INTO acct VALUES (1, 0)")
                let conninfo = try LiveDatabase.conninfo(database: s.database)
                let settings = SessionSettings(applicationName: "lockvault")
                let cNew = try LiveDatabase.connect(database: s.database, applicationName: "lockvault")
                let cOld = try LiveDatabase.connect(database: s.database, applicationName: "lockvault")
                defer { cNew.close(); cOld.close() }
                let options = SnapshotOptions(lockHoldThresholdSeconds: 1, lockTableCheckIntervalSeconds: 3600)
                var oldOptions = options
                oldOptions.readOnlyWhatChanged = false
                let carrying = SnapshotReader(options: options, conninfo: conninfo, settings: settings)
                let everything = SnapshotReader(options: oldOptions, conninfo: conninfo, settings: settings)
                defer { carrying.close(); everything.close() }
                func both() throws -> (new: LockSnapshot, old: LockSnapshot) {
                    let n = try carrying.read(cNew), o = try everything.read(cOld)
                    return (n, o)
                }

                // A chain (a ← b ← c on tables) and a row wait (e ← f), a long idle-in-transaction holder.
                let a = try await s.session("lv-a"), b = try await s.session("lv-b"), c = try await s.session("lv-c")
                let e = try await s.session("lv-e"), f = try await s.session("lv-f"), idle = try await s.session("lv-idle")
                try await a.run("BEGIN", "LOCK TABLE t1 IN ACCESS EXCLUSIVE MODE")
                try await b.run("BEGIN", "LOCK TABLE t2 IN ACCESS EXCLUSIVE MODE")
                let bWaits = b.start("LOCK TABLE t1 IN ACCESS SHARE MODE")
                try await s.waitForWaiters(1)
                let cWaits = c.start("SELECT * FROM t2")
                try await e.run("BEGIN", "UPDATE acct SET n = n + 1 WHERE id = 1")
                let fWaits = f.start("UPDATE acct SET n = n + 1 WHERE id = 1")
                try await s.waitForWaiters(3)
                try await idle.run("SELECT 1")
                let g = try await s.session("lv-g")
                let ours: Set<Int32> = Set([a, b, c, e, f, g, idle].map(\.pid))

                let first = try both()
                #expect(first.new.locks.contains { !$0.granted && $0.pid == f.pid }, "the first cycle reads the waits")
                #expect(Seen(first.new, only: ours) == Seen(first.old, only: ours))
                #expect(!first.new.backends.contains { $0.pid == idle.pid }, "an idle session that blocks nobody is only counted")
                #expect(first.new.backendCount >= 6 && first.new.sessionDatabases[idle.pid] == s.database)

                // Steady: nobody's wait changed. The carrying reader doesn't read pg_locks; the DBA
                // sees the same thing, waitstart and all.
                try await Task.sleep(for: .milliseconds(1100))   // a and e are long transactions now
                for _ in 0..<3 {
                    let steady = try both()
                    #expect(Seen(steady.new, only: ours) == Seen(steady.old, only: ours))
                    #expect(steady.new.locks.filter { !$0.granted && $0.pid == f.pid }.map(\.waitStart) == first.new.locks.filter { !$0.granted && $0.pid == f.pid }.map(\.waitStart))
                }

                // The chain's head leaves: b gets t1, c still waits for b — a changed blocker set for
                // nobody, but b no longer waits. Then e commits: f's wait ends.
                try await a.run("ROLLBACK")
                _ = await bWaits.value
                try await s.waitForWaiters(2)
                var now = try both()
                #expect(Seen(now.new, only: ours) == Seen(now.old, only: ours))
                #expect(!now.new.locks.contains { $0.pid == b.pid && !$0.granted }, "b's finished wait is not carried")
                try await e.run("COMMIT")
                if case .failure(let err) = await fWaits.value { Issue.record("\(err)") }
                try await s.waitForWaiters(1)
                now = try both()
                #expect(Seen(now.new, only: ours) == Seen(now.old, only: ours))
                #expect(!now.new.backends.contains { $0.pid == f.pid && $0.isWaitingOnLock })

                // A new waiter behind the same blocker: read at once.
                let gWaits = g.start("SELECT * FROM t2")
                try await s.waitForWaiters(2)
                now = try both()
                #expect(Seen(now.new, only: ours) == Seen(now.old, only: ours))
                #expect(now.new.locks.contains { $0.pid == g.pid && !$0.granted })

                try await b.run("ROLLBACK")
                _ = await cWaits.value
                _ = await gWaits.value
                now = try both()
                #expect(Seen(now.new, only: ours) == Seen(now.old, only: ours))
                #expect(!now.new.locks.contains { !$0.granted })
            }
        }

        /// The engine's scenarios on the path before issue 16 too: the dashboard rows are the same.
        @Test(arguments: [true, false]) func aChainOfThreeIsShownTheSameOnEitherPath(readOnlyWhatChanged: Bool) async throws {
            try await EngineScenario.run(configure: { $0.sampling.snapshot.readOnlyWhatChanged = readOnlyWhatChanged }) { s in
                try s.admin.executeScript("CREATE TABLE t1 (id int); CREATE TABLE t2 (id int)")
                let a = try await s.session("lv-a"), b = try await s.session("lv-b"), c = try await s.session("lv-c")
                try await a.run("BEGIN", "LOCK TABLE t1 IN ACCESS EXCLUSIVE MODE")
                try await b.run("BEGIN", "LOCK TABLE t2 IN ACCESS EXCLUSIVE MODE")
                let bWaits = b.start("LOCK TABLE t1 IN ACCESS SHARE MODE")
                try await s.waitForWaiters(1)
                let cWaits = c.start("SELECT * FROM t2")
                try await s.waitForWaiters(2)
                for _ in 0..<3 {   // the first cycle reads the waits, the next two carry them
                    let outcome = try await s.cycle()
                    #expect(outcome.assessments.map(\.pid) == [a.pid, b.pid])
                    let rows = try s.rows("SELECT session_pid, blocked_sessions_count, held_lock_mode, lock_target FROM lock_monitoring.blocking_sessions_dashboard")
                    #expect(try rows.map { try $0.decode("session_pid", as: Int32.self) } == [a.pid, b.pid])
                    #expect(try rows.map { try $0.decode("blocked_sessions_count", as: Int.self) } == [2, 1])
                    #expect(try rows.map { try $0.decode("lock_target", as: String.self) } == ["relation public.t1", "relation public.t2"])
                    let waits = try s.rows("SELECT session_pid, blocking_pid FROM lock_monitoring.lock_activity_dashboard WHERE NOT granted ORDER BY session_pid")
                    #expect(try waits.map { try $0.decode("session_pid", as: Int32.self) } == [b.pid, c.pid].sorted())
                }
                try await a.run("ROLLBACK")
                _ = await bWaits.value
                try await b.run("ROLLBACK")
                _ = await cWaits.value
                try await s.cycle()
                #expect(try s.rows("SELECT 1 FROM lock_monitoring.blocking_sessions_dashboard").isEmpty)
                try s.assertVaultConsistent()
            }
        }

        /// The lock-table reading (utilisation, fingerprints) is due by the reader's injected
        /// clock: held, it stays skipped however long the test takes; moved past the interval,
        /// the next cycle reads the lock table again.
        @Test func theLockTableReadingFollowsTheInjectedClock() throws {
            let conninfo = try LiveDatabase.conninfo()
            let conn = try LiveDatabase.connect(applicationName: "lockvault")
            defer { conn.close() }
            let wall = MovableWall(Date(timeIntervalSince1970: 1_800_000_000))
            let clock = MonitorClock(now: { .now }, date: { wall.date }, random: { 0.5 })
            let reader = SnapshotReader(options: SnapshotOptions(lockTableCheckIntervalSeconds: 60), conninfo: conninfo,
                                        settings: SessionSettings(applicationName: "lockvault"), clock: clock)
            defer { reader.close() }
            #expect(try reader.read(conn).lockTable != nil)   // the first cycle always reads it
            wall.move(59)
            #expect(try reader.read(conn).lockTable == nil)
            wall.move(2)
            #expect(try reader.read(conn).lockTable != nil)
        }
    }
}
