import Foundation
import LockvaultCore
@testable import LockvaultEngine
import PostgresClient
import Testing

/// A vault built by an older lockvault migrates forward: every row kept, the dashboards read
/// them, new cycles continue the same history, and the schema ends up exactly as a fresh
/// vault's. "Older" is the vault as migrations 001…012 built it before functions and views
/// moved to sql/functions and sql/views (Tests/Fixtures/vault-v1, frozen), written to by the
/// cycle writer of that time (Support/CycleRecordV1.swift, frozen).
extension LiveDatabaseSuite {
    @Suite struct VaultUpgradeLiveTests {
        static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/vault-v1")

        /// Migration 013 as it was first merged (record_cycle split in two, the dashboard recreated
        /// inside it), before it moved to this layout: vaults may have applied it.
        static let killReasonFixtures = fixtures.deletingLastPathComponent().appendingPathComponent("vault-v1-kill-reason")

        /// The migrations as the binary of that time embedded them (text without the final newline).
        static func v1Migrations(withKillReason: Bool = false) throws -> [Migration] {
            func load(_ dir: URL) throws -> [Migration] {
                try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".sql") }.sorted().map { name in
                    var text = try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)
                    if text.hasSuffix("\n") { text.removeLast() }
                    return Migration(name: name, sql: text)
                }
            }
            let v1 = try load(fixtures)
            #expect(v1.count == 12)
            return withKillReason ? v1 + (try load(killReasonFixtures)) : v1
        }

        /// Applies the v1 migrations exactly as that lockvault did (it knew nothing else).
        static func buildV1Vault(_ conn: PostgresConnection, withKillReason: Bool = false) throws {
            let applied = try Migrator(migrations: try v1Migrations(withKillReason: withKillReason), superseded: [:]).apply(on: conn)
            #expect(applied.count == (withKillReason ? 13 : 12))
        }

        /// Every data table's columns, in order (schema_migrations aside).
        static func columns(_ conn: PostgresConnection) throws -> [String: [String]] {
            try conn.query("""
                SELECT table_name, array_agg(column_name::text ORDER BY ordinal_position) AS cols FROM information_schema.columns
                WHERE table_schema = 'lock_monitoring' AND table_name <> 'schema_migrations'
                  AND table_name IN (SELECT tablename FROM pg_tables WHERE schemaname = 'lock_monitoring')
                GROUP BY table_name
                """).reduce(into: [:]) { $0[try $1.decode("table_name", as: String.self)] = try $1.decode("cols", as: [String].self) }
        }

        /// Every data table's rows, as text, over the given columns (a column added later doesn't count).
        static func contents(_ conn: PostgresConnection, columns: [String: [String]]) throws -> [String: [String]] {
            var out: [String: [String]] = [:]
            for (table, cols) in columns {
                let list = cols.map { "t.\($0)" }.joined(separator: ", ")
                out[table] = try conn.query("SELECT ROW(\(list))::text AS r FROM lock_monitoring.\(table) t ORDER BY 1").map { try $0.decode("r", as: String.self) }
            }
            return out
        }

        /// The alert trail as the old daemon wrote it: its own INSERTs, one transaction.
        static func writeV1Alerts(_ alerts: [(Alert, systemIdentifier: String)], deliveries: [AlertDeliveryRecord], recordSource: String,
                                  on conn: PostgresConnection) throws {
            _ = try conn.transaction { tx in
                for (alert, sysid) in alerts {
                    _ = try tx.query("""
                        INSERT INTO lock_monitoring.alert_h (alert_hk, alert_id, cluster_hk, load_date, record_source)
                        VALUES (lock_monitoring.hash_key($1), $1, lock_monitoring.hash_key($2), now(), $3) ON CONFLICT DO NOTHING
                        """, [alert.alertID, sysid, recordSource])
                    _ = try tx.query("""
                        INSERT INTO lock_monitoring.alert_event_s (alert_hk, event_at, kind, load_date, record_source, severity, previous_severity, summary, payload)
                        VALUES (lock_monitoring.hash_key($1), $2, $3, now(), $4, $5, $6, $7, $8::jsonb) ON CONFLICT DO NOTHING
                        """, [alert.alertID, alert.at, alert.kind.rawValue, recordSource, alert.severity.rawValue, alert.previousSeverity?.rawValue,
                              alert.summary, alert.json()])
                }
                for d in deliveries {
                    _ = try tx.query("""
                        INSERT INTO lock_monitoring.alert_delivery_s (alert_hk, event_at, kind, sink, load_date, record_source, outcome, attempts, error, finished_at)
                        VALUES (lock_monitoring.hash_key($1), $2, $3, $4, now(), $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING
                        """, [d.alert.alertID, d.alert.at, d.alert.kind.rawValue, d.sink, recordSource, d.outcome.rawValue, d.attempts, d.error, d.finishedAt])
                }
            }
        }

        static func count(_ conn: PostgresConnection, _ table: String, _ params: [(any PostgresEncodable)?] = []) throws -> Int {
            try conn.query("SELECT count(*) AS n FROM lock_monitoring.\(table)", params)[0].decode("n", as: Int.self)
        }

        @Test func aVaultWrittenByTheOldWriterMigratesForwardWithEveryRowKept() async throws {
            let log = try #require(LiveDatabase.serverLogPath, "the test harness sets LOCKVAULT_TEST_SERVER_LOG")
            try await LiveDatabase.withTemporaryDatabase { db in
                let setup = try LiveDatabase.connect(database: db)
                defer { setup.close() }
                try Self.buildV1Vault(setup)
                var resolve = ResolvePolicy()
                resolve.enabled = true
                resolve.dryRun = true
                resolve.killThresholdSeconds = 0
                let s = try EngineScenario(database: db, severity: SeverityPolicy(mediumAfterSeconds: 0, highAfterSeconds: 0.001, criticalAfterSeconds: 0.002),
                                           serverLog: log, resolve: resolve, migrator: nil)
                let gid = "lv-upgrade-\(db)"
                do {
                    try await Self.upgrade(s, gid: gid)
                } catch {
                    _ = try? s.admin.execute("ROLLBACK PREPARED '\(gid)'")
                    await s.close()
                    throw error
                }
                _ = try? s.admin.execute("ROLLBACK PREPARED '\(gid)'")
                await s.close()
            }
        }

        static func upgrade(_ s: EngineScenario, gid: String) async throws {
            let admin = s.admin
            try admin.executeScript("""
                CREATE TABLE dl (id int PRIMARY KEY, v int); INSERT INTO dl VALUES (1, 0), (2, 0);
                CREATE TABLE t (id int); CREATE TABLE p (id int PRIMARY KEY); INSERT INTO p VALUES (1);
                GRANT ALL ON dl, t, p TO PUBLIC;
                """)
            // The old daemon: sample (the monitor writes nothing), then record with the old writer.
            var alerts = AlertTracker(cluster: "test")
            var alertRows: [(Alert, systemIdentifier: String)] = []
            func v1Cycle() async throws -> CycleOutcome {
                let outcome = await s.monitor.runCycle(write: false)
                if let e = outcome.targetError { throw ScenarioError(message: e) }
                var snapshot = try #require(outcome.snapshot)
                // The old daemon read every backend every cycle, and its writer names sessions (a
                // deadlock's participants, idle by now) from them; today's sampler only counts
                // idle sessions and knows them by (pid, backend_start). Give the old writer those.
                for (pid, start) in snapshot.sessionStarts.sorted(by: { $0.key < $1.key }) where snapshot.backend(pid) == nil {
                    snapshot.backends.append(BackendActivity(pid: pid, backendStart: start, database: snapshot.sessionDatabases[pid], state: .idle))
                }
                let record = CycleRecordV1(
                    snapshot: snapshot, assessments: outcome.assessments, graph: WaitGraph(snapshot), deadlocks: outcome.deadlocks,
                    decisions: outcome.decisions.map { $0.record(decidedBy: "test", at: snapshot.capturedAt) },
                    // The old writer's own copy of the rule: CRITICAL (the kill threshold is 0 here).
                    autoKillEligible: { $0.severity == .critical && !$0.isSuperuser }, killThresholdSeconds: 0, clusterName: "test",
                    recordSource: s.monitor.recordSource, cycleMilliseconds: outcome.cycleMilliseconds, heartbeatSeconds: 3600, gap: nil)
                _ = try admin.transaction { tx in try tx.query("SELECT lock_monitoring.record_cycle($1::jsonb)", [try record.encoded()]) }
                alertRows += alerts.observe(snapshot, assessments: outcome.assessments, deadlocks: []).map { ($0, snapshot.systemIdentifier) }
                return outcome
            }
            _ = try await v1Cycle()   // baseline: deadlock counters, log position

            // A real deadlock, recorded by the old writer.
            let a = try await s.session("lv-up-a"), b = try await s.session("lv-up-b")
            try await a.run("BEGIN", "UPDATE dl SET v = 1 WHERE id = 1")
            try await b.run("BEGIN", "UPDATE dl SET v = 2 WHERE id = 2")
            let aTask = a.start("UPDATE dl SET v = 1 WHERE id = 2")
            try await s.waitForWaiters(1)
            let bTask = b.start("UPDATE dl SET v = 2 WHERE id = 1")
            _ = (await aTask.value, await bTask.value)
            try await a.run("ROLLBACK"); try await b.run("ROLLBACK")
            try await waitUntil("the old writer recorded the deadlock with its participants", timeout: .seconds(30), every: .milliseconds(150)) {
                _ = try await v1Cycle()
                return try s.rows("""
                    SELECT 1 FROM lock_monitoring.deadlock_event_s WHERE 'server_log' = ANY(sources) AND 'counter' = ANY(sources)
                    """).count == 1 && Self.count(admin, "deadlock_involvement_s") == 2
            }

            // Blocking now: a session blocks a waiter; a prepared transaction blocks another.
            let holder = try await s.session("lv-up-holder"), waiter = try await s.session("lv-up-waiter")
            let preparer = try await s.session("lv-up-prepared"), waiter2 = try await s.session("lv-up-waiter2")
            try await holder.run("BEGIN", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
            let waiting = waiter.start("SELECT count(*) FROM t")
            try await preparer.run("BEGIN", "UPDATE p SET id = 1 WHERE id = 1", "PREPARE TRANSACTION '\(gid)'")
            let waiting2 = waiter2.start("UPDATE p SET id = 1 WHERE id = 1")
            try await s.waitForWaiters(2)
            // Past the 0.002 s CRITICAL threshold, severities are final.
            try await waitUntil("both blockers recorded as CRITICAL", timeout: .seconds(10), every: .milliseconds(20)) {
                try await v1Cycle().assessments.filter { $0.severity == .critical }.count == 2
            }
            // Past the hold threshold too (5 s), so that the old writer has already recorded the
            // holder's transaction as long (its other locks) when the new writer's cycle comes: on
            // a loaded machine the threshold can otherwise pass between the two, and the new cycle
            // would rightly record something new.
            try await waitUntil("the holder's transaction is past the hold threshold", timeout: .seconds(30), every: .milliseconds(100)) {
                try s.rows("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND xact_start < now() - interval '6 s'", [holder.pid]).count == 1
            }
            let outcome = try await v1Cycle()   // a steady cycle: nothing new but decisions
            #expect(outcome.assessments.count == 2)
            #expect(outcome.decisions.count == 2, "dry-run decisions for both blockers")
            let deliveries = alertRows.map { AlertDeliveryRecord(alert: $0.0, sink: "mail", outcome: .delivered, attempts: 1, error: nil, finishedAt: Date()) }
            #expect(!alertRows.isEmpty, "CRITICAL blockers raised alerts")
            // The old daemon wrote its alert trail with statements of its own, outside the cycle.
            try Self.writeV1Alerts(alertRows, deliveries: deliveries, recordSource: s.monitor.recordSource, on: admin)

            for table in ["blocking_session_s", "lock_activity_s", "lock_blocking_l", "deadlock_event_s", "deadlock_involvement_s", "resolve_decision_s",
                          "deadlock_counter_s", "monitor_cycle_s", "alert_event_s", "alert_delivery_s"] {
                #expect(try Self.count(admin, table) > 0, "the old writer wrote \(table)")
            }
            let columnsBefore = try Self.columns(admin)
            let before = try Self.contents(admin, columns: columnsBefore)
            let dashboards = [
                "SELECT session_pid, prepared_gid, blocking_severity, blocked_sessions_count, last_decision FROM lock_monitoring.blocking_sessions_dashboard",
                "SELECT session_pid, granted, lock_mode, lock_target, prepared_gid FROM lock_monitoring.lock_activity_dashboard",
                "SELECT participant_pids, victim_pid, sources, event_key FROM lock_monitoring.deadlock_events_dashboard",
                "SELECT alert_id, kind, severity, deliveries FROM lock_monitoring.alerts_dashboard",
            ]
            func read(_ sql: String) throws -> [String] {
                try admin.query("SELECT d::text AS r FROM (\(sql)) d ORDER BY 1").map { try $0.decode("r", as: String.self) }
            }
            let shownBefore = try dashboards.map(read)
            #expect(shownBefore.allSatisfy { !$0.isEmpty }, "every dashboard shows the old rows: \(shownBefore)")

            // The new lockvault: its checks refuse the vault until migrated, then migrate adds the functions and views.
            let later = Migration.embedded.filter { $0.kind == .versioned && $0.name >= "013" }.map(\.name)
            #expect(try Migrator().pending(on: admin).map(\.name) == later + [Migration.repeatableName], "the old numbered migrations count as applied")
            #expect(try Migrator().apply(on: admin) == later + [Migration.repeatableName])
            #expect(try Migrator().pending(on: admin).isEmpty)

            #expect(try Self.contents(admin, columns: columnsBefore) == before, "no row lost or changed by migrating")
            #expect(try Self.count(admin, "blocking_session_s WHERE auto_kill_reason IS NOT NULL") == 0, "old rows have no reason")
            #expect(try dashboards.map(read) == shownBefore, "the dashboards read the old rows as before")

            // New cycles continue the same history: same hubs, same hash diffs, so a steady situation writes nothing new …
            let steady = ["blocking_session_h", "lock_activity_h", "lock_activity_s", "lock_blocking_l", "deadlock_event_h",
                          "deadlock_event_s", "deadlock_involvement_l", "deadlock_involvement_s", "deadlock_counter_s"]
            let counts = try steady.map { try Self.count(admin, $0) }
            let summaries = try Self.count(admin, "monitor_cycle_s")
            let decisions = try Self.count(admin, "resolve_decision_s")
            let oldBlockerRows = try Self.count(admin, "blocking_session_s")
            // The old writer's rows of the session blocker: one, or more if it saw the blocker change while
            // severities settled; one of them current.
            let holderRowsSQL = "blocking_session_s s JOIN lock_monitoring.blocking_session_h h USING (blocking_session_hk) WHERE h.session_pid = $1"
            let oldHolderRows = try Self.count(admin, holderRowsSQL, [holder.pid])
            #expect(try Self.count(admin, holderRowsSQL + " AND s.load_end_date IS NULL", [holder.pid]) == 1)
            try await s.cycle()   // the new writer, as the least-privileged monitor role
            #expect(try steady.map { try Self.count(admin, $0) } == counts, "\(steady)")
            #expect(try Self.count(admin, "resolve_decision_s") > decisions, "the new writer records this cycle's decisions")
            // … and the cycle summary, which now counts the blockers by severity (migration 025): one new row that carries them.
            #expect(try Self.count(admin, "monitor_cycle_s") == summaries + 1)
            #expect(try Self.count(admin, "monitor_cycle_s WHERE load_end_date IS NULL AND high_blockers IS NOT NULL") == 1)
            // … except the blockers, whose rows now carry the kill rule's reason (migration 013): each old
            // row ends, one new row per blocker has its reason; the old rows keep theirs NULL.
            #expect(try Self.count(admin, "blocking_session_s") == oldBlockerRows + 2)
            let reasons = try admin.query("""
                SELECT auto_kill_reason FROM lock_monitoring.blocking_session_s WHERE load_end_date IS NULL ORDER BY 1
                """).map { try $0.decode("auto_kill_reason", as: String?.self) }
            #expect(reasons.count == 2 && reasons.allSatisfy { $0 != nil }, "\(reasons)")
            #expect(try Self.count(admin, "blocking_session_s WHERE auto_kill_reason IS NULL") == oldBlockerRows)
            try await s.cycle()
            #expect(try Self.count(admin, "blocking_session_s") == oldBlockerRows + 2, "a steady cycle writes no blocker row")
            // … and a change is recorded: the session blocker commits, its waiter finishes.
            try await holder.run("COMMIT")
            _ = await waiting.value
            try await s.cycle()
            let blockers = try admin.query("SELECT session_pid, prepared_gid FROM lock_monitoring.blocking_sessions_dashboard")
            #expect(blockers.count == 1)
            #expect(try blockers.first?.decode("prepared_gid", as: String?.self) == gid, "only the prepared transaction still blocks")
            let ended = try admin.query("""
                SELECT count(*) AS n FROM lock_monitoring.blocking_session_s s JOIN lock_monitoring.blocking_session_h h USING (blocking_session_hk)
                WHERE h.session_pid = $1 AND s.load_end_date IS NOT NULL
                """, [holder.pid])[0].decode("n", as: Int.self)
            let holderRows = try admin.query("""
                SELECT s.load_date::text, s.load_end_date::text, s.blocking_severity, s.held_lock_mode, s.lock_target, s.blocked_sessions_count::text, s.session_state, s.blocking_started::text, s.auto_kill_eligible::text
                FROM lock_monitoring.blocking_session_s s JOIN lock_monitoring.blocking_session_h h USING (blocking_session_hk)
                WHERE h.session_pid = $1 ORDER BY s.load_date
                """, [holder.pid]).map { r in try (0..<9).map { try r.decode($0, as: String?.self) ?? "-" }.joined(separator: " | ") }
            #expect(ended == oldHolderRows + 1, "the old writer's rows (its current one ended when the reason came) and the new writer's (ended when it stopped blocking): \(holderRows)")
            try VaultConsistency.expectConsistent(admin)
            try admin.execute("ROLLBACK PREPARED '\(gid)'")
            _ = await waiting2.value
        }

        /// After migrating, an old vault and a fresh one have the same tables, columns, indexes,
        /// constraints, functions, views, comments and privileges.
        @Test func anUpgradedVaultHasExactlyTheSchemaOfAFreshOne() async throws {
            try await LiveDatabase.withTemporaryDatabase { upgradedDB in
                try await LiveDatabase.withTemporaryDatabase { freshDB in
                    let upgraded = try LiveDatabase.connect(database: upgradedDB)
                    defer { upgraded.close() }
                    try Self.buildV1Vault(upgraded)
                    try Migrator().apply(on: upgraded)
                    let fresh = try LiveDatabase.connect(database: freshDB)
                    defer { fresh.close() }
                    try Migrator().apply(on: fresh)
                    let a = try Self.schema(upgraded), b = try Self.schema(fresh)
                    #expect(a.subtracting(b).sorted() == [], "only in the upgraded vault")
                    #expect(b.subtracting(a).sorted() == [], "only in the fresh vault")
                    #expect(a.count > 300)
                    // So does one that applied migration 013 as first merged.
                    try await LiveDatabase.withTemporaryDatabase { killReasonDB in
                        let upgraded13 = try LiveDatabase.connect(database: killReasonDB)
                        defer { upgraded13.close() }
                        try Self.buildV1Vault(upgraded13, withKillReason: true)
                        let after13 = Migration.embedded.filter { $0.kind == .versioned && $0.name >= "014" }.map(\.name)
                        #expect(try Migrator().apply(on: upgraded13) == after13 + [Migration.repeatableName])
                        let c = try Self.schema(upgraded13)
                        #expect(c.subtracting(b).sorted() == [], "only in the vault upgraded from the first 013")
                        #expect(b.subtracting(c).sorted() == [], "only in the fresh vault")
                    }
                    // The old lockvault refuses the migrated vault instead of writing into it.
                    let refused = try #require(throws: MigrationError.self) { try Migrator(migrations: try Self.v1Migrations(), superseded: [:]).pending(on: upgraded) }
                    #expect(refused.code == .unknownMigration)
                    #expect([Migration.repeatableName, "013_kill_eligibility_reason.sql"].contains(refused.migration), "\(refused)")
                }
            }
        }

        /// One line per schema fact of lock_monitoring. The partitions of the partitioned history
        /// tables (one a day that has rows) differ with the history a vault holds: what must
        /// match is the partitioned tables themselves, their key, and that each has its default.
        static func schema(_ conn: PostgresConnection) throws -> Set<String> {
            let queries = [
                """
                SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' #' || a.attnum
                       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END || ' gen=' || a.attgenerated::text
                       || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '') || ' comment=' || coalesce(col_description(c.oid, a.attnum), '')
                FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                WHERE n.nspname = 'lock_monitoring' AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'v', 'p') AND NOT c.relispartition
                """,
                """
                SELECT 'relation ' || c.relname || ' ' || c.relkind::text || ' acl=' || coalesce(c.relacl::text, '') || ' comment=' || coalesce(obj_description(c.oid, 'pg_class'), '')
                       || ' view=' || coalesce(pg_get_viewdef(c.oid), '')
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'lock_monitoring' AND NOT c.relispartition
                """,
                """
                SELECT 'index ' || i.indexdef FROM pg_indexes i JOIN pg_class t ON t.oid = format('%I.%I', i.schemaname, i.tablename)::regclass
                WHERE i.schemaname = 'lock_monitoring' AND NOT t.relispartition
                """,
                """
                SELECT 'partitioned ' || c.relname || ' ' || pg_get_partkeydef(c.oid) || ' default=' || coalesce(d.relname, '')
                FROM pg_class c LEFT JOIN pg_partitioned_table p ON p.partrelid = c.oid LEFT JOIN pg_class d ON d.oid = p.partdefid
                WHERE c.relnamespace = 'lock_monitoring'::regnamespace AND c.relkind = 'p'
                """,
                """
                SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(c.oid)
                FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
                WHERE n.nspname = 'lock_monitoring' AND NOT coalesce((SELECT relispartition FROM pg_class WHERE oid = c.conrelid), false)
                """,
                """
                SELECT 'function ' || p.oid::regprocedure || ' acl=' || coalesce(p.proacl::text, '') || ' comment=' || coalesce(obj_description(p.oid, 'pg_proc'), '')
                       || ' def=' || md5(pg_get_functiondef(p.oid))
                FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'lock_monitoring'
                """,
                "SELECT 'schema ' || coalesce(obj_description(oid, 'pg_namespace'), '') || ' acl=' || coalesce(nspacl::text, '') FROM pg_namespace WHERE nspname = 'lock_monitoring'",
            ]
            var facts: Set<String> = []
            for q in queries {
                for row in try conn.query(q) { facts.insert(try row.decode(0, as: String.self)) }
            }
            return facts
        }
    }
}
