import Foundation
import LockvaultCore
import LockvaultEngine
import PostgresClient
import Testing

extension LiveDatabaseSuite {
    /// Issue 4's scenarios: real sessions, real locks, exact dashboard rows.
    @Suite struct SamplingLiveTests {
        @Test func tableLockChainOfThree() async throws {
            try await EngineScenario.run { s in
                try s.admin.executeScript("CREATE TABLE t1 (id int); CREATE TABLE t2 (id int)")
                let a = try await s.session("lv-a"), b = try await s.session("lv-b"), c = try await s.session("lv-c")
                try await a.run("BEGIN", "LOCK TABLE t1 IN ACCESS EXCLUSIVE MODE")
                try await b.run("BEGIN", "LOCK TABLE t2 IN ACCESS EXCLUSIVE MODE")
                let bWaits = b.start("LOCK TABLE t1 IN ACCESS SHARE MODE")
                try await s.waitForWaiters(1)
                let cWaits = c.start("SELECT * FROM t2")
                try await s.waitForWaiters(2)
                let outcome = try await s.cycle()
                #expect(outcome.assessments.map(\.pid) == [a.pid, b.pid])

                let rows = try s.rows("SELECT session_pid, blocked_sessions_count, is_root_blocker, held_lock_mode, lock_target, blocked_pids FROM lock_monitoring.blocking_sessions_dashboard")
                #expect(try rows.map { try $0.decode("session_pid", as: Int32.self) } == [a.pid, b.pid])
                #expect(try rows.map { try $0.decode("blocked_sessions_count", as: Int.self) } == [2, 1])
                #expect(try rows.map { try $0.decode("is_root_blocker", as: Bool.self) } == [true, false])
                #expect(try rows.map { try $0.decode("held_lock_mode", as: String.self) } == ["AccessExclusiveLock", "AccessExclusiveLock"])
                #expect(try rows.map { try $0.decode("lock_target", as: String.self) } == ["relation public.t1", "relation public.t2"])
                #expect(try rows[0].decode("blocked_pids", as: [Int32].self).sorted() == [b.pid, c.pid].sorted())

                let waits = try s.rows("SELECT session_pid, lock_mode, relation_name, blocking_pid FROM lock_monitoring.lock_activity_dashboard WHERE NOT granted ORDER BY session_pid")
                #expect(try waits.map { try $0.decode("session_pid", as: Int32.self) } == [b.pid, c.pid].sorted())
                let byPid = Dictionary(uniqueKeysWithValues: try waits.map { (try $0.decode("session_pid", as: Int32.self), $0) })
                #expect(try byPid[b.pid]?.decode("relation_name", as: String.self) == "public.t1")
                #expect(try byPid[b.pid]?.decode("blocking_pid", as: Int32.self) == a.pid)
                #expect(try byPid[c.pid]?.decode("lock_mode", as: String.self) == "AccessShareLock")
                #expect(try byPid[c.pid]?.decode("blocking_pid", as: Int32.self) == b.pid)

                try await a.run("ROLLBACK")
                _ = await bWaits.value
                try await b.run("ROLLBACK")
                _ = await cWaits.value
                try await s.cycle()
                #expect(try s.rows("SELECT 1 FROM lock_monitoring.blocking_sessions_dashboard").isEmpty, "ended blockers leave the dashboard")
                try s.assertVaultConsistent()
            }
        }

        @Test func rowLockWaitOnTransactionID() async throws {
            try await EngineScenario.run { s in
                try s.admin.executeScript("CREATE TABLE acct (id int PRIMARY KEY, balance int); INSERT INTO acct VALUES (1, 100)")
                let a = try await s.session("lv-a"), b = try await s.session("lv-b")
                try await a.run("BEGIN", "UPDATE acct SET balance = balance - 1 WHERE id = 1")
                let xid = try s.rows("SELECT backend_xid::text AS x FROM pg_stat_activity WHERE pid = $1", [a.pid])[0].decode("x", as: String.self)
                let bWaits = b.start("UPDATE acct SET balance = balance + 1 WHERE id = 1")
                try await s.waitForWaiters(1)
                try await s.cycle()
                let row = try #require(try s.rows("SELECT session_pid, lock_target, session_state, blocking_severity FROM lock_monitoring.blocking_sessions_dashboard").first)
                #expect(try row.decode("session_pid", as: Int32.self) == a.pid)
                #expect(try row.decode("lock_target", as: String.self) == "transaction \(xid)")
                #expect(try row.decode("session_state", as: String.self) == "idle in transaction")
                let wait = try #require(try s.rows("SELECT lock_type, lock_mode, blocking_pid FROM lock_monitoring.lock_activity_dashboard WHERE NOT granted").first)
                #expect(try wait.decode("lock_type", as: String.self) == "transactionid")
                #expect(try wait.decode("lock_mode", as: String.self) == "ShareLock")
                #expect(try wait.decode("blocking_pid", as: Int32.self) == a.pid)
                try await a.run("COMMIT")
                if case .failure(let e) = await bWaits.value { Issue.record("\(e)") }
            }
        }

        @Test func idleInTransactionBlockerEscalatesWithTime() async throws {
            let fast = SeverityPolicy(mediumAfterSeconds: 1, highAfterSeconds: 2, criticalAfterSeconds: 3, highBlockedSessions: 50,
                                      criticalBlockedSessions: 100, idleInTransactionFactor: 1, exclusiveLockEscalates: false)
            try await EngineScenario.run(severity: fast) { s in
                try s.admin.execute("CREATE TABLE t (id int)")
                let a = try await s.session("lv-idle"), b = try await s.session("lv-victim")
                try await a.run("BEGIN", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
                let bWaits = b.start("SELECT * FROM t")
                try await s.waitForWaiters(1)
                var seen: [String] = []
                try await waitUntil("severity reaches CRITICAL", timeout: .seconds(20), every: .milliseconds(200)) {
                    try await s.cycle()
                    let severity = try s.rows("SELECT blocking_severity FROM lock_monitoring.blocking_sessions_dashboard")[0].decode("blocking_severity", as: String.self)
                    if seen.last != severity { seen.append(severity) }
                    return severity == "CRITICAL"
                }
                #expect(seen.first == "LOW" || seen.first == "MEDIUM")
                #expect(seen.last == "CRITICAL")
                #expect(seen == seen.sorted { BlockerSeverity(rawValue: $0)! < BlockerSeverity(rawValue: $1)! }, "only ever escalates: \(seen)")
                let versions = try s.rows("SELECT count(*) AS n FROM lock_monitoring.blocking_session_s")[0].decode("n", as: Int.self)
                #expect(versions == seen.count, "one satellite row per severity level, not per cycle")
                let eligible = try s.rows("SELECT auto_kill_eligible, recommended_action FROM lock_monitoring.blocking_sessions_dashboard")[0]
                #expect(try eligible.decode("recommended_action", as: String.self).contains("idle in transaction"))
                try await a.run("ROLLBACK")
                _ = await bWaits.value
            }
        }

        @Test func advisoryLockQueueShowsTheApplicationsKeys() async throws {
            try await EngineScenario.run { s in
                let a = try await s.session("lv-a"), b = try await s.session("lv-b"), c = try await s.session("lv-c"), d = try await s.session("lv-d")
                try await a.run("SELECT pg_advisory_lock(-5)", "SELECT pg_advisory_lock(1, 2)")
                let bWaits = b.start("SELECT pg_advisory_lock(-5)")
                let cWaits = c.start("SELECT pg_advisory_lock(1, 2)")
                let dWaits = d.start("SELECT pg_advisory_xact_lock(hashtext('invoice:42'))")
                _ = dWaits
                try await s.waitForWaiters(2)
                try await s.cycle()
                let keys = try s.rows("SELECT session_pid, advisory_key, lock_target FROM lock_monitoring.lock_activity_dashboard WHERE NOT granted ORDER BY session_pid")
                let byPid = Dictionary(uniqueKeysWithValues: try keys.map { (try $0.decode("session_pid", as: Int32.self), try $0.decode("advisory_key", as: String.self)) })
                #expect(byPid[b.pid] == "-5")
                #expect(byPid[c.pid] == "(1, 2)")
                let blocker = try #require(try s.rows("SELECT session_pid, blocked_sessions_count FROM lock_monitoring.blocking_sessions_dashboard").first)
                #expect(try blocker.decode("session_pid", as: Int32.self) == a.pid)
                #expect(try blocker.decode("blocked_sessions_count", as: Int.self) == 2)
                try await a.run("SELECT pg_advisory_unlock_all()")
                _ = await bWaits.value; _ = await cWaits.value
                try await b.run("SELECT pg_advisory_unlock_all()"); try await c.run("SELECT pg_advisory_unlock_all()")
            }
        }

        @Test func preparedTransactionBlockerIsNamedByGid() async throws {
            try await EngineScenario.run { s in
                try s.admin.execute("CREATE TABLE t (id int)")
                let a = try await s.session("lv-a"), b = try await s.session("lv-b")
                let gid = "lv-test-\(UInt32.random(in: 0...UInt32.max))"
                try await a.run("BEGIN", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE", "PREPARE TRANSACTION '\(gid)'")
                let bWaits = b.start("SELECT * FROM t")
                try await s.waitForWaiters(1)
                let outcome = try await s.cycle()
                #expect(outcome.assessments.first?.participant == .prepared(gid))
                let row = try #require(try s.rows("SELECT session_pid, prepared_gid, recommended_action, auto_kill_eligible, held_lock_mode FROM lock_monitoring.blocking_sessions_dashboard").first)
                #expect(try row.decode("session_pid", as: Int32?.self) == nil)
                #expect(try row.decode("prepared_gid", as: String.self) == gid)
                #expect(try row.decode("recommended_action", as: String.self).contains("ROLLBACK PREPARED '\(gid)'"))
                #expect(try row.decode("auto_kill_eligible", as: Bool.self) == false)
                #expect(try row.decode("held_lock_mode", as: String.self) == "AccessExclusiveLock")
                let wait = try #require(try s.rows("SELECT blocking_pid FROM lock_monitoring.lock_activity_dashboard WHERE NOT granted").first)
                #expect(try wait.decode("blocking_pid", as: Int32.self) == 0)
                try s.admin.execute("ROLLBACK PREPARED '\(gid)'")
                _ = await bWaits.value
            }
        }

        @Test func crossDatabaseBlockingNamesRelationsInTheirOwnDatabase() async throws {
            try await EngineScenario.run { s in
                // The monitor connects to s.database; the contention happens in another database,
                // where the table has an OID that means something else (or nothing) here.
                let other = "lv_other_\(UInt32.random(in: 0...UInt32.max))"
                try s.admin.execute("CREATE DATABASE \(other)")
                defer { _ = try? s.admin.execute("DROP DATABASE IF EXISTS \(other) WITH (FORCE)") }
                let setup = try LiveDatabase.connect(database: other)
                try setup.executeScript("CREATE SCHEMA billing; CREATE TABLE billing.invoices (id int)")
                let oid = try setup.query("SELECT 'billing.invoices'::regclass::oid::int8 AS o")[0].decode("o", as: Int64.self)
                setup.close()
                let a = try await s.session("lv-a", database: other), b = try await s.session("lv-b", database: other)
                try await a.run("BEGIN", "LOCK TABLE billing.invoices IN ACCESS EXCLUSIVE MODE")
                let bWaits = b.start("SELECT * FROM billing.invoices")
                try await s.waitForWaiters(1)
                try await s.cycle()
                let wait = try #require(try s.rows("SELECT relation_name, database_name FROM lock_monitoring.lock_activity_dashboard WHERE NOT granted").first)
                #expect(try wait.decode("relation_name", as: String.self) == "billing.invoices")
                #expect(try wait.decode("database_name", as: String.self) == other)
                let localName = try s.rows("SELECT $1::int8::oid::regclass::text AS n", [oid])[0].decode("n", as: String.self)
                #expect(localName != "billing.invoices", "the monitor's own catalog can't name it")
                try await a.run("ROLLBACK")
                _ = await bWaits.value
                for session in s.sessions { await session.close() }
            }
        }

        @Test func aSteadySituationSampledSixtyTimesWritesConstantRows() async throws {
            // Thresholds far away, so that nothing can change however long 60 cycles take on a
            // loaded machine: no severity step (MEDIUM is 10 s by default), and the waiter's own
            // transaction never becomes a long one whose granted locks are captured (5 s).
            try await EngineScenario.run(severity: SeverityPolicy(mediumAfterSeconds: 3600, highAfterSeconds: 7200, criticalAfterSeconds: 10800),
                                         configure: { $0.sampling.snapshot.lockHoldThresholdSeconds = 3600 }) { s in
                try s.admin.execute("CREATE TABLE t (id int)")
                let a = try await s.session("lv-a"), b = try await s.session("lv-b")
                try await a.run("BEGIN", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
                let bWaits = b.start("SELECT * FROM t")
                try await s.waitForWaiters(1)
                for _ in 0..<60 { try await s.cycle() }
                let counts = try s.rows("""
                    SELECT (SELECT count(*) FROM lock_monitoring.blocking_session_s) AS blockers,
                           (SELECT count(*) FROM lock_monitoring.lock_activity_s) AS locks,
                           (SELECT count(*) FROM lock_monitoring.monitor_cycle_s) AS cycles
                    """)[0]
                #expect(try counts.decode("blockers", as: Int.self) == 1)
                let locks = try counts.decode("locks", as: Int.self)
                #expect(locks >= 2 && locks <= 6, "a handful of lock rows, not 60×: \(locks)")
                #expect(try counts.decode("cycles", as: Int.self) == 1, "summary unchanged: one row (heartbeat 1 h)")
                try await a.run("ROLLBACK")
                _ = await bWaits.value
            }
        }

        @Test func longTransactionLocksAreReadOnceThenCarriedUntilTheyChange() async throws {
            try await EngineScenario.run { s in
                try s.admin.executeScript("CREATE TABLE t1 (id int); CREATE TABLE t2 (id int); CREATE TABLE t3 (id int)")
                let a = try await s.session("lv-long")
                try await a.run("BEGIN", "LOCK TABLE t1 IN ACCESS SHARE MODE")
                try await Task.sleep(for: .milliseconds(1200))
                let conn = try LiveDatabase.connect(database: s.database, applicationName: "lockvault")
                defer { conn.close() }
                var lastSnapshot: LockSnapshot?
                func held(_ reader: SnapshotReader) throws -> Set<String> {
                    let snapshot = try reader.read(conn)
                    lastSnapshot = snapshot
                    return Set(snapshot.locks.filter { $0.pid == a.pid && $0.lockType == .relation }.compactMap(\.relationName))
                }
                let reader = SnapshotReader(options: SnapshotOptions(lockHoldThresholdSeconds: 1, lockTableCheckIntervalSeconds: 3600),
                                            conninfo: try LiveDatabase.conninfo(database: s.database), settings: SessionSettings(applicationName: "lockvault"))
                defer { reader.close() }
                #expect(try held(reader) == ["public.t1"], "read when the transaction is first seen past the threshold")
                #expect(lastSnapshot?.lockTable != nil, "the first cycle reads the lock table")
                try await a.run("LOCK TABLE t2 IN ACCESS SHARE MODE")
                #expect(try held(reader) == ["public.t1"], "carried, not re-read: a lock taken later waits for the lock-table reading")
                #expect(lastSnapshot?.lockTable == nil, "no lock-table reading until the interval is up")
                reader.options.lockTableCheckIntervalSeconds = 0
                #expect(try held(reader) == ["public.t1", "public.t2"], "the lock-table reading sees the fingerprint move and re-reads")
                #expect(lastSnapshot?.lockTable != nil)
                #expect(try held(reader) == ["public.t1", "public.t2"], "unchanged: carried")
                reader.options.lockTableCheckIntervalSeconds = 3600
                #expect(try held(reader) == ["public.t1", "public.t2"])

                // A new transaction on the same pid is a new long transaction: read afresh.
                try await a.run("COMMIT", "BEGIN", "LOCK TABLE t3 IN ACCESS SHARE MODE")
                #expect(try held(reader).isEmpty, "not long yet")
                try await Task.sleep(for: .milliseconds(1200))
                #expect(try held(reader) == ["public.t3"])

                // Blocking someone: its locks are read in full that cycle, whatever is remembered.
                try await a.run("LOCK TABLE t1 IN ACCESS SHARE MODE")
                let b = try await s.session("lv-waiter")
                try await b.run("BEGIN")
                let bWaits = b.start("LOCK TABLE t3 IN ACCESS EXCLUSIVE MODE")
                try await s.waitForWaiters(1)
                #expect(try held(reader) == ["public.t1", "public.t3"])
                try await a.run("ROLLBACK")
                _ = await bWaits.value
                try await b.run("ROLLBACK")
                #expect(try held(reader).isEmpty, "ended transactions are forgotten")
            }
        }

        @Test func aLongTransactionsLocksStayOneVaultRowAcrossCycles() async throws {
            try await EngineScenario.run { s in
                try s.admin.executeScript("CREATE TABLE t1 (id int)")
                let a = try await s.session("lv-long")
                try await a.run("BEGIN", "LOCK TABLE t1 IN ACCESS SHARE MODE")
                try await Task.sleep(for: .milliseconds(5300))   // past the default 5 s hold threshold
                for _ in 0..<4 { try await s.cycle() }
                let rows = try s.rows("""
                    SELECT s.load_end_date IS NULL AS current FROM lock_monitoring.lock_activity_s s
                    WHERE s.session_pid = $1 AND s.relation_name = 'public.t1'
                    """, [a.pid])
                #expect(rows.count == 1, "one row for the held lock, not one per cycle")
                #expect(try rows.first?.decode("current", as: Bool.self) == true)
                try await a.run("ROLLBACK")
                try await s.cycle()
                #expect(try s.rows("SELECT 1 FROM lock_monitoring.lock_activity_s WHERE session_pid = $1 AND load_end_date IS NULL", [a.pid]).isEmpty)
                try s.assertVaultConsistent()
            }
        }

        @Test func hundredSessionsContendingOnOneRowLeaveAConsistentVault() async throws {
            try await EngineScenario.run { s in
                try s.admin.executeScript("CREATE TABLE counter (id int PRIMARY KEY, n int); INSERT INTO counter VALUES (1, 0)")
                let holder = try await s.session("lv-holder")
                try await holder.run("BEGIN", "UPDATE counter SET n = n + 1 WHERE id = 1")
                var waiters: [(BackgroundSession, Task<Result<Void, PostgresError>, Never>)] = []
                for i in 0..<100 {
                    let w = try await s.session("lv-w\(i)")
                    waiters.append((w, w.start("UPDATE counter SET n = n + 1 WHERE id = 1")))
                }
                try await s.waitForWaiters(100, timeout: .seconds(60))
                let outcome = try await s.cycle()
                let root = try #require(outcome.assessments.first { $0.isRoot })
                #expect(root.pid == holder.pid)
                #expect(root.blockedCount == 100)
                let row = try #require(try s.rows("SELECT session_pid, blocked_sessions_count, blocking_severity FROM lock_monitoring.blocking_sessions_dashboard WHERE is_root_blocker").first)
                #expect(try row.decode("session_pid", as: Int32.self) == holder.pid)
                #expect(try row.decode("blocked_sessions_count", as: Int.self) == 100)
                #expect(try row.decode("blocking_severity", as: String.self) == "CRITICAL", "≥ critical_blocked_sessions")

                // Release: the queue drains while we keep sampling.
                try await holder.run("COMMIT")
                for (_, task) in waiters { if case .failure(let e) = await task.value { Issue.record("waiter failed: \(e)") } }
                try await s.cycle()
                try await s.cycle()
                #expect(try s.rows("SELECT 1 FROM lock_monitoring.blocking_sessions_dashboard").isEmpty)
                #expect(try s.rows("SELECT n FROM counter")[0].decode("n", as: Int.self) == 101)
                try s.assertVaultConsistent()
            }
        }
    }
}
