import Foundation
import LockvaultCore
import LockvaultEngine
import Logging
import PostgresClient
import Testing

extension LiveDatabaseSuite {
    /// The monitor under faults: its vault tables locked, the vault gone, its own sessions
    /// terminated, its statements timed out. Sampling and blocking detection go on; what was
    /// sampled reaches the vault later, in order, exactly once — or, past the buffer bound, the
    /// vault records a gap instead.
    @Suite struct MonitorFaultLiveTests {
        /// A table `t` held in ACCESS EXCLUSIVE by one session; `addWaiter` queues one more
        /// session behind it, so every cycle sees a different situation.
        final class Contention: @unchecked Sendable {
            let scenario: EngineScenario
            let holder: BackgroundSession
            private(set) var waiters: [Task<Result<Void, PostgresError>, Never>] = []

            init(_ s: EngineScenario) async throws {
                scenario = s
                try s.admin.executeScript("CREATE TABLE t (id int); GRANT ALL ON t TO PUBLIC;")
                holder = try await s.session("fault-holder")
                try await holder.run("BEGIN", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
            }

            func addWaiter() async throws {
                let w = try await scenario.session("fault-waiter-\(waiters.count + 1)")
                waiters.append(w.start("SELECT count(*) FROM t"))
                try await scenario.waitForWaiters(waiters.count)
            }

            func release() async throws {
                try await holder.run("ROLLBACK")
                for w in waiters { _ = await w.value }
            }
        }

        struct CycleRow {
            var loadDate: Date
            var loadEnd: Date?
            var waiting: Int
        }

        static func cycleRows(_ conn: PostgresConnection) throws -> [CycleRow] {
            try conn.query("SELECT load_date, load_end_date, waiting_sessions FROM lock_monitoring.monitor_cycle_s ORDER BY load_date").map {
                CycleRow(loadDate: try $0.decode("load_date"), loadEnd: try $0.decode("load_end_date"), waiting: try $0.decode("waiting_sessions"))
            }
        }

        static func same(_ a: Date?, _ b: Date?) -> Bool {
            guard let a, let b else { return a == nil && b == nil }
            return abs(a.timeIntervalSince(b)) < 0.000_002
        }

        /// One row per summary, chained: each ends exactly when the next begins, one is current,
        /// and they were written for exactly the cycles captured at `expected` (in that order).
        /// The one other row a summary may gain is the daemon's vault buffer state changing
        /// (buffering, then not: fleet_dashboard shows it), which repeats its predecessor's counts.
        static func expectHistory(_ rows: [CycleRow], captured expected: [(Date, Int)], sourceLocation: SourceLocation = #_sourceLocation) {
            let captures = rows.filter { row in expected.contains { same(row.loadDate, $0.0) } }
            #expect(captures.map(\.waiting) == expected.map(\.1), "waiting_sessions per row", sourceLocation: sourceLocation)
            #expect(captures.count == expected.count, sourceLocation: sourceLocation)
            for (row, cycle) in zip(captures, expected) {
                #expect(same(row.loadDate, cycle.0), "row for the cycle captured at \(cycle.0) has load_date \(row.loadDate)", sourceLocation: sourceLocation)
            }
            for (previous, row) in zip(rows, rows.dropFirst()) where !expected.contains(where: { same(row.loadDate, $0.0) }) {
                #expect(row.waiting == previous.waiting, "a row for no captured change repeats its predecessor (a buffer-state row)", sourceLocation: sourceLocation)
            }
            for (a, b) in zip(rows, rows.dropFirst()) {
                #expect(same(a.loadEnd, b.loadDate), "each version ends when the next begins", sourceLocation: sourceLocation)
            }
            #expect(rows.filter { $0.loadEnd == nil }.count == 1, "exactly one current row", sourceLocation: sourceLocation)
        }

        /// Drains the monitor's buffer (without sampling: no new records), waiting out its backoff.
        static func drain(_ monitor: Monitor) async throws {
            try await waitUntil("the buffered cycle records are written", timeout: .seconds(40), every: .milliseconds(100)) {
                await monitor.writeBuffered().pending == 0
            }
        }

        static func lockvaultPids(_ conn: PostgresConnection, database: String, waitingOnLock: Bool = false) throws -> [Int32] {
            try conn.query("""
                SELECT pid FROM pg_stat_activity WHERE application_name = 'lockvault' AND datname = $1
                  AND ($2 = false OR wait_event_type = 'Lock')
                """, [database, waitingOnLock]).map { try $0.decode("pid", as: Int32.self) }
        }

        @Test func aVaultTableLockedExclusivelyDelaysWritesButNotSampling() async throws {
            try await EngineScenario.run(configure: { $0.sampling.session.lockTimeoutMs = 200 }) { s in
                let c = try await Contention(s)
                let first = try await s.cycle()
                var captured = [(try #require(first.snapshot).capturedAt, 0)]

                let locker = try LiveDatabase.connect(database: s.database, applicationName: "lv-vault-locker")
                defer { locker.close() }
                try locker.execute("BEGIN")
                try locker.execute("LOCK TABLE lock_monitoring.monitor_cycle_s IN ACCESS EXCLUSIVE MODE")
                for n in 1...4 {
                    try await c.addWaiter()
                    let o = await s.monitor.runCycle()
                    #expect(o.targetFailure == nil)
                    #expect(o.assessments.map(\.pid) == [c.holder.pid], "blocking is still detected")
                    #expect(o.assessments.first?.blockedCount == n)
                    let failure = try #require(o.vaultFailure)
                    #expect(failure.code == .unavailable)
                    #expect(o.pendingWrites == n, "the cycle is buffered")
                    captured.append((try #require(o.snapshot).capturedAt, n))
                    // The write gave up (lock_timeout) instead of queueing behind the lock.
                    #expect(try Self.lockvaultPids(s.admin, database: s.database, waitingOnLock: true).isEmpty)
                }
                try locker.execute("ROLLBACK")
                #expect(try Self.cycleRows(s.admin).count == 1, "nothing was written while the table was locked")
                try await Self.drain(s.monitor)
                Self.expectHistory(try Self.cycleRows(s.admin), captured: captured)
                let counts = try s.rows("""
                    SELECT blocked_sessions_count AS n FROM lock_monitoring.blocking_session_s WHERE session_pid = $1 ORDER BY load_date
                    """, [c.holder.pid]).map { try $0.decode("n", as: Int.self) }
                #expect(counts == [1, 2, 3, 4], "the blocker's history, one version per buffered cycle, in order")
                try s.assertVaultConsistent()
                try await c.release()
            }
        }

        @Test func aUserTableLockedExclusivelyDoesNotStopTheSnapshot() async throws {
            try await LiveDatabase.withTemporaryDatabase { other in
                try await EngineScenario.run(configure: {
                    $0.sampling.session.statementTimeoutMs = 2000
                    $0.sampling.session.lockTimeoutMs = 200
                }) { s in
                    let c = try await Contention(s)
                    try await c.addWaiter()
                    // And in another database, whose relation names take a connection of their own.
                    let otherAdmin = try LiveDatabase.connect(database: other)
                    defer { otherAdmin.close() }
                    try otherAdmin.executeScript("CREATE TABLE u (id int); GRANT ALL ON u TO PUBLIC;")
                    let otherHolder = try await s.session("fault-other-holder", database: other)
                    try await otherHolder.run("BEGIN", "LOCK TABLE u IN ACCESS EXCLUSIVE MODE")
                    let otherWaiter = try await s.session("fault-other-waiter", database: other)
                    let otherWaiting = otherWaiter.start("SELECT count(*) FROM u")
                    try await s.waitForWaiters(2)

                    for _ in 1...3 {
                        let o = await s.monitor.runCycle()
                        #expect(o.targetFailure == nil, "\(o.targetError ?? "")")
                        #expect(o.vaultFailure == nil, "\(o.vaultError ?? "")")
                        let names = Set(try #require(o.snapshot).locks.filter { !$0.granted }.compactMap(\.relationName))
                        #expect(names == ["public.t", "public.u"])
                        #expect(Set(o.assessments.compactMap(\.pid)) == [c.holder.pid, otherHolder.pid])
                    }
                    try await otherHolder.run("ROLLBACK")
                    _ = await otherWaiting.value
                    try await c.release()
                }
            }
        }

        /// A separate vault database that refuses connections for a while.
        static func withSeparateVault(maxBuffered: Int, _ body: (EngineScenario, String) async throws -> Void) async throws {
            try await LiveDatabase.withTemporaryDatabase { vaultDB in
                do {
                    let admin = try LiveDatabase.connect(database: vaultDB)
                    defer { admin.close() }
                    try Migrator().apply(on: admin)
                }
                try await EngineScenario.run(configure: {
                    $0.vault.dsn = try LiveDatabase.conninfo(database: vaultDB, user: EngineScenario.leastPrivilegedRole)
                    $0.vault.maxBufferedCycles = maxBuffered
                }) { s in
                    do {
                        try await body(s, vaultDB)
                    } catch {
                        try? setVault(vaultDB, reachable: true)
                        throw error
                    }
                }
            }
        }

        static func setVault(_ db: String, reachable: Bool) throws {
            let admin = try LiveDatabase.connect()
            defer { admin.close() }
            try admin.execute("ALTER DATABASE \(db) ALLOW_CONNECTIONS \(reachable)")
            if !reachable {
                _ = try admin.query("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = $1", [db])
            }
        }

        @Test func aVaultOutageIsBufferedAndWrittenInOrderWhenItReturns() async throws {
            try await Self.withSeparateVault(maxBuffered: 100) { s, vaultDB in
                let vault = { try LiveDatabase.connect(database: vaultDB) }
                let c = try await Contention(s)
                let first = try await s.cycle()
                var captured = [(try #require(first.snapshot).capturedAt, 0)]

                try Self.setVault(vaultDB, reachable: false)
                for n in 1...4 {
                    try await c.addWaiter()
                    let o = await s.monitor.runCycle()
                    #expect(o.targetFailure == nil)
                    #expect(o.assessments.first?.blockedCount == n, "sampling goes on without the vault")
                    #expect(o.vaultFailure?.code == .unavailable, "\(o.vaultError ?? "")")
                    #expect(o.pendingWrites == n)
                    #expect(o.droppedRecords == 0)
                    captured.append((try #require(o.snapshot).capturedAt, n))
                }
                try Self.setVault(vaultDB, reachable: true)
                try await Self.drain(s.monitor)

                let conn = try vault()
                defer { conn.close() }
                Self.expectHistory(try Self.cycleRows(conn), captured: captured)
                #expect(try conn.query("SELECT 1 FROM lock_monitoring.monitor_gap_s").isEmpty, "nothing was lost, so there is no gap")
                // Written to the vault only, never to the target's own (migrated) schema.
                #expect(try Self.cycleRows(s.admin).isEmpty)
                // One version of the blocker per buffered cycle: nothing written twice.
                let versions = try conn.query("SELECT blocked_sessions_count AS n FROM lock_monitoring.blocking_session_s ORDER BY load_date")
                    .map { try $0.decode("n", as: Int.self) }
                #expect(versions == [1, 2, 3, 4])
                try await c.release()
            }
        }

        @Test func pastTheBufferBoundTheOldestAreDroppedAndAGapIsRecorded() async throws {
            try await Self.withSeparateVault(maxBuffered: 3) { s, vaultDB in
                let c = try await Contention(s)
                let first = try await s.cycle()
                var captured = [(try #require(first.snapshot).capturedAt, 0)]

                try Self.setVault(vaultDB, reachable: false)
                for n in 1...6 {
                    try await c.addWaiter()
                    let o = await s.monitor.runCycle()
                    #expect(o.targetFailure == nil)
                    #expect(o.assessments.first?.blockedCount == n)
                    #expect(o.pendingWrites == min(n, 3), "never more than the bound")
                    #expect(o.droppedRecords == max(0, n - 3))
                    captured.append((try #require(o.snapshot).capturedAt, n))
                }
                try Self.setVault(vaultDB, reachable: true)
                try await Self.drain(s.monitor)

                let conn = try LiveDatabase.connect(database: vaultDB)
                defer { conn.close() }
                // Cycles 1–3 were dropped; 4–6 written in order after the one from before the outage.
                let kept = [captured[0]] + captured[4...]
                Self.expectHistory(try Self.cycleRows(conn), captured: Array(kept))
                let gaps = try conn.query("SELECT gap_start, gap_end, reason FROM lock_monitoring.monitor_gap_s")
                try #require(gaps.count == 1)
                #expect(Self.same(try gaps[0].decode("gap_start", as: Date.self), captured[1].0), "the gap starts at the first dropped cycle")
                #expect(Self.same(try gaps[0].decode("gap_end", as: Date.self), captured[4].0), "and ends at the first kept one")
                let reason = try gaps[0].decode("reason", as: String.self)
                #expect(reason.contains("vault unavailable") && reason.contains("3 cycle records dropped") && reason.contains("limit 3"), "\(reason)")
                let counts = try conn.query("""
                    SELECT blocked_sessions_count AS n FROM lock_monitoring.blocking_session_s WHERE session_pid = $1 ORDER BY load_date
                    """, [c.holder.pid]).map { try $0.decode("n", as: Int.self) }
                #expect(counts == [4, 5, 6])
                try await c.release()
            }
        }

        @Test func ownVaultSessionTerminatedMidWriteLosesNothing() async throws {
            // A long lock_timeout: the write really waits, and is killed while it does.
            try await EngineScenario.run(configure: { $0.sampling.session.lockTimeoutMs = 60_000 }) { s in
                let c = try await Contention(s)
                try await c.addWaiter()
                let first = try await s.cycle()
                var captured = [(try #require(first.snapshot).capturedAt, 1)]

                let locker = try LiveDatabase.connect(database: s.database, applicationName: "lv-vault-locker")
                defer { locker.close() }
                try locker.execute("BEGIN")
                try locker.execute("LOCK TABLE lock_monitoring.monitor_cycle_s IN ACCESS EXCLUSIVE MODE")
                try await c.addWaiter()
                let monitor = s.monitor
                let cycle = Task { await monitor.runCycle() }
                try await waitUntil("the monitor's vault write waits for the lock") {
                    try !Self.lockvaultPids(s.admin, database: s.database, waitingOnLock: true).isEmpty
                }
                let writer = try #require(try Self.lockvaultPids(s.admin, database: s.database, waitingOnLock: true).first)
                _ = try s.admin.query("SELECT pg_terminate_backend($1, 5000)", [writer])
                let o = await cycle.value
                #expect(o.targetFailure == nil)
                #expect(o.assessments.first?.blockedCount == 2, "the cycle's sample survived its vault session")
                #expect(o.vaultFailure?.code == .unavailable, "\(o.vaultError ?? "")")
                #expect(o.pendingWrites == 1)
                captured.append((try #require(o.snapshot).capturedAt, 2))
                try locker.execute("ROLLBACK")

                // Now its target session is terminated between cycles: that cycle sees nothing,
                // the buffer is untouched, and the next one reconnects and records the gap.
                for pid in try Self.lockvaultPids(s.admin, database: s.database) {
                    _ = try s.admin.query("SELECT pg_terminate_backend($1, 5000)", [pid])
                }
                var lost = await s.monitor.runCycle()
                if lost.targetFailure == nil { lost = await s.monitor.runCycle() }
                #expect(lost.targetFailure?.code == .unavailable, "\(lost.targetError ?? "none")")
                #expect(lost.snapshot == nil)
                try await waitUntil("the monitor samples again", timeout: .seconds(30), every: .milliseconds(100)) {
                    await s.monitor.runCycle().snapshot != nil
                }
                try await Self.drain(s.monitor)
                let rows = try Self.cycleRows(s.admin)
                Self.expectHistory(rows, captured: captured)
                let gaps = try s.rows("SELECT reason FROM lock_monitoring.monitor_gap_s").map { try $0.decode("reason", as: String.self) }
                #expect(gaps.count == 1 && gaps[0].contains("target unavailable"), "\(gaps)")
                try s.assertVaultConsistent()
                try await c.release()
            }
        }

        @Test func aRecordTheVaultRejectsIsSkippedAndRecordedAsAGap() async throws {
            try await EngineScenario.run { s in
                // A test-only trigger that refuses the summary of a cycle that saw two waiters,
                // as a constraint or a bad value would: retrying can't help.
                try s.admin.executeScript("""
                    CREATE FUNCTION refuse_two() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN IF NEW.waiting_sessions = 2 THEN RAISE EXCEPTION 'two waiters refused' USING ERRCODE = '22023'; END IF; RETURN NEW; END $$;
                    CREATE TRIGGER refuse_two BEFORE INSERT ON lock_monitoring.monitor_cycle_s FOR EACH ROW EXECUTE FUNCTION refuse_two();
                    """)
                let c = try await Contention(s)
                var captured: [(Date, Int)] = []
                for n in 0...3 {
                    if n > 0 { try await c.addWaiter() }
                    let o = await s.monitor.runCycle()
                    #expect(o.targetFailure == nil)
                    #expect(o.vaultFailure == nil, "a rejected record does not make the vault unavailable: \(o.vaultError ?? "")")
                    #expect(o.pendingWrites == 0, "nor does it hold back the records after it")
                    captured.append((try #require(o.snapshot).capturedAt, n))
                }
                Self.expectHistory(try Self.cycleRows(s.admin), captured: captured.filter { $0.1 != 2 })
                let gaps = try s.rows("SELECT gap_start, gap_end, reason FROM lock_monitoring.monitor_gap_s")
                try #require(gaps.count == 1)
                #expect(Self.same(try gaps[0].decode("gap_start", as: Date.self), captured[2].0))
                #expect(Self.same(try gaps[0].decode("gap_end", as: Date.self), captured[3].0))
                let reason = try gaps[0].decode("reason", as: String.self)
                #expect(reason.contains("vault rejected 1 cycle record") && reason.contains("two waiters refused"), "\(reason)")
                try s.assertVaultConsistent()
                try await c.release()
            }
        }

        /// The snapshot itself runs into statement_timeout: a DBA holds pg_authid (behind the
        /// pg_roles lookup of the snapshot) in ACCESS EXCLUSIVE, as `VACUUM FULL pg_authid` would.
        @Test func aSnapshotHittingStatementTimeoutFailsOneCycleAndRecordsTheGap() async throws {
            try await EngineScenario.run(configure: {
                $0.sampling.session.statementTimeoutMs = 300
                $0.sampling.session.lockTimeoutMs = 10_000
            }) { s in
                let c = try await Contention(s)
                try await c.addWaiter()
                let before = try await s.cycle()
                let monitorPids = Set(try Self.lockvaultPids(s.admin, database: s.database))

                // Only this connection may touch pg_authid (pg_stat_activity included) until ROLLBACK.
                try s.admin.execute("BEGIN")
                try s.admin.execute("LOCK TABLE pg_catalog.pg_authid IN ACCESS EXCLUSIVE MODE")
                let stuck = await s.monitor.runCycle()
                try s.admin.execute("ROLLBACK")
                let failure = try #require(stuck.targetFailure)
                #expect(failure.code == .unavailable)
                #expect(failure.message.contains("statement timeout"), "\(failure.message)")
                #expect(stuck.snapshot == nil)

                let after = try await s.cycle()
                #expect(after.assessments.map(\.pid) == [c.holder.pid], "blocking is seen again")
                #expect(Set(try Self.lockvaultPids(s.admin, database: s.database)) == monitorPids,
                        "the timed-out statement left its connection usable: no reconnect")
                let gap = try #require(try s.rows("SELECT gap_start, gap_end, reason FROM lock_monitoring.monitor_gap_s").first)
                #expect(Self.same(try gap.decode("gap_start", as: Date.self), try #require(before.snapshot).capturedAt))
                #expect(Self.same(try gap.decode("gap_end", as: Date.self), try #require(after.snapshot).capturedAt))
                #expect(try gap.decode("reason", as: String.self).contains("statement timeout"))
                try s.assertVaultConsistent()
                try await c.release()
            }
        }

        @Test func aStatementTimeoutMidWriteIsRetriedExactlyOnce() async throws {
            try await EngineScenario.run(configure: { $0.sampling.session.statementTimeoutMs = 300 }) { s in
                // A test-only trigger that makes the vault write slower than statement_timeout
                // while `slow_vault` has a row.
                try s.admin.executeScript("""
                    CREATE TABLE slow_vault (on_ boolean); GRANT SELECT ON slow_vault TO PUBLIC;
                    CREATE FUNCTION slow_vault_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN IF EXISTS (SELECT 1 FROM public.slow_vault) THEN PERFORM pg_sleep(5); END IF; RETURN NEW; END $$;
                    CREATE TRIGGER slow_vault BEFORE INSERT ON lock_monitoring.monitor_cycle_s FOR EACH ROW EXECUTE FUNCTION slow_vault_trigger();
                    """)
                let c = try await Contention(s)
                let first = try await s.cycle()
                var captured = [(try #require(first.snapshot).capturedAt, 0)]
                try s.admin.execute("INSERT INTO slow_vault VALUES (true)")
                for n in 1...2 {
                    try await c.addWaiter()
                    let o = await s.monitor.runCycle()
                    #expect(o.targetFailure == nil)
                    #expect(o.assessments.first?.blockedCount == n)
                    #expect(o.vaultFailure?.code == .unavailable)
                    captured.append((try #require(o.snapshot).capturedAt, n))
                }
                #expect(try Self.cycleRows(s.admin).count == 1, "the timed-out writes were rolled back")
                try s.admin.execute("DELETE FROM slow_vault")
                try await Self.drain(s.monitor)
                Self.expectHistory(try Self.cycleRows(s.admin), captured: captured)
                try s.assertVaultConsistent()
                try await c.release()
            }
        }

        /// lockvault stopped (or crashed) and started again later: the first cycle of the new
        /// process records the time since the vault last heard of this cluster as a gap.
        @Test func aStoppedDaemonsDowntimeIsRecordedAsAGapWhenItStartsAgain() async throws {
            try await EngineScenario.run { s in
                _ = try await s.cycle()
                await s.monitor.close()
                // As if that lockvault had stopped two hours ago (longer than a heartbeat: 1 h here).
                try s.admin.execute("UPDATE lock_monitoring.monitor_cycle_s SET last_cycle_at = last_cycle_at - interval '2 hours'")
                let stoppedAt = try s.admin.query("SELECT max(last_cycle_at) AS t FROM lock_monitoring.monitor_cycle_s")[0].decode("t", as: Date.self)
                let restarted = Monitor(settings: s.configuration, decidedBy: "test", logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
                let first = await restarted.runCycle()
                #expect(first.targetFailure == nil && first.vaultFailure == nil)
                _ = await restarted.runCycle()
                await restarted.close()
                let gaps = try s.admin.query("SELECT gap_start, gap_end, reason FROM lock_monitoring.monitor_gap_s")
                #expect(gaps.count == 1, "one gap for the downtime, none for the cycles after it")
                let gap = try #require(gaps.first)
                #expect(Self.same(try gap.decode("gap_start", as: Date.self), stoppedAt))
                #expect(Self.same(try gap.decode("gap_end", as: Date.self), try #require(first.snapshot).capturedAt))
                #expect(try gap.decode("reason", as: String.self).hasPrefix("lockvault was not recording"))
            }
        }
    }
}
