import Foundation
import LockvaultCore
@testable import LockvaultEngine
import PostgresClient
import Testing

/// The history tables are partitioned by load time (migration 020): one partition per UTC day
/// and a default partition. What a DBA relies on: an episode that crosses midnight is one
/// episode on the dashboards; retention drops whole days but never a current row or the hubs
/// current rows point to; a write for a day with no partition yet is kept; a vault built by
/// the migrations before partitioning upgrades with every row kept.
///
/// The cycles are real (a real blocker and waiter, sampled by the Monitor, encoded by the
/// daemon's own CycleRecord); only their sample time is moved, to put them on either side of a
/// partition boundary, or 40 days back, or 30 days ahead.
extension LiveDatabaseSuite {
    @Suite struct PartitionedHistoryLiveTests {
        /// A sampled cycle with a blocker and a waiter, as the daemon would write it.
        struct Sampled {
            let document: [String: Any]
            let holderPid: Int32
            let systemIdentifier: String
        }

        static func sampleBlocking(_ s: EngineScenario) async throws -> Sampled {
            try s.admin.executeScript("CREATE TABLE t (id int); GRANT ALL ON t TO PUBLIC")
            let holder = try await s.session("lv-part-holder"), waiter = try await s.session("lv-part-waiter")
            try await holder.run("BEGIN", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
            _ = waiter.start("SELECT count(*) FROM t")
            try await s.waitForWaiters(1)
            let outcome = await s.monitor.runCycle(write: false)
            let snapshot = try #require(outcome.snapshot)
            #expect(outcome.assessments.count == 1)
            let record = CycleRecord(
                snapshot: snapshot, assessments: outcome.assessments, graph: WaitGraph(snapshot), deadlocks: [], decisions: [],
                rulings: outcome.rulings, context: RecordContext(clusterName: "part", recordSource: "test", killThresholdSeconds: 0), heartbeatSeconds: 3600,
                    cycleMilliseconds: 1, gap: nil)
            let document = try #require(try JSONSerialization.jsonObject(with: Data(try record.encoded().utf8)) as? [String: Any])
            return Sampled(document: document, holderPid: holder.pid, systemIdentifier: snapshot.systemIdentifier)
        }

        /// The document sampled at `at` instead (and, when `changed`, with the blocker's state
        /// changed, so that its current row is superseded); optionally for another cluster.
        static func write(_ sampled: Sampled, at: Date, changed: Bool = false, empty: Bool = false, systemIdentifier: String? = nil,
                          on conn: PostgresConnection) throws {
            let text = try document(sampled, at: at, changed: changed, empty: empty, systemIdentifier: systemIdentifier)
            _ = try conn.transaction { tx in try tx.query("SELECT lock_monitoring.record_cycle($1::jsonb)", [text]) }
        }

        /// The document `write` sends, as text.
        static func document(_ sampled: Sampled, at: Date, changed: Bool = false, empty: Bool = false, systemIdentifier: String? = nil) throws -> String {
            var d = sampled.document
            d["captured_at"] = PostgresTimestamp.format(at)
            if let systemIdentifier { d["system_identifier"] = systemIdentifier }
            if changed, var blockers = d["blockers"] as? [[String: Any]] {
                for i in blockers.indices {
                    blockers[i]["blocking_severity"] = "CRITICAL"
                    blockers[i]["hash_diff"] = "\\x" + String(repeating: "ab", count: 32)
                }
                d["blockers"] = blockers
                // As the daemon's summary would count them (migration 025: fleet_status reads the counts there).
                d["summary"] = Self.summary(d["summary"], critical: blockers.count, hash: "cd")
            }
            if empty {
                for family in ["sessions", "locks", "waits", "blockers"] { d[family] = [] }
                d["summary"] = Self.summary(d["summary"], critical: 0, hash: "ef")
            }
            return String(decoding: try JSONSerialization.data(withJSONObject: d), as: UTF8.self)
        }

        /// The cycle summary with `critical` CRITICAL blockers and no others, under another hash diff.
        static func summary(_ summary: Any?, critical: Int, hash: String) -> [String: Any]? {
            guard var summary = summary as? [String: Any] else { return nil }
            summary["critical_blockers"] = critical
            for key in ["high_blockers", "medium_blockers", "low_blockers"] { summary[key] = 0 }
            summary["hash_diff"] = "\\x" + String(repeating: hash, count: 32)
            return summary
        }

        static func count(_ conn: PostgresConnection, _ sql: String, _ params: [(any PostgresEncodable)?] = []) throws -> Int {
            try conn.query("SELECT count(*) AS n FROM \(sql)", params)[0].decode("n", as: Int.self)
        }

        /// 00:00 UTC of the day `date` falls in, `days` days on.
        static func midnight(_ date: Date, days: Int = 0) -> Date {
            var cal = Calendar(identifier: .gregorian)
            cal.timeZone = TimeZone(identifier: "UTC")!
            return cal.date(byAdding: .day, value: days, to: cal.startOfDay(for: date))!
        }

        @Test func aPartitionBoundaryCrossedMidEpisodeKeepsTheEpisodeWhole() async throws {
            try await EngineScenario.run { s in
                let sampled = try await Self.sampleBlocking(s)
                // Yesterday's and today's partitions exist (migration 020 creates yesterday … +7 days).
                let boundary = Self.midnight(Date())
                try Self.write(sampled, at: boundary.addingTimeInterval(-2), on: s.admin)
                try Self.write(sampled, at: boundary.addingTimeInterval(-1), on: s.admin)       // steady: nothing new
                try Self.write(sampled, at: boundary.addingTimeInterval(1), changed: true, on: s.admin)   // it changes after midnight
                try Self.write(sampled, at: boundary.addingTimeInterval(2), changed: true, on: s.admin)   // steady again

                let history = try s.rows("""
                    SELECT s.tableoid::regclass::text AS part, s.load_date, s.load_end_date, s.blocking_severity
                    FROM lock_monitoring.blocking_session_s s JOIN lock_monitoring.blocking_session_h h USING (blocking_session_hk)
                    WHERE h.session_pid = $1 ORDER BY s.load_date
                    """, [sampled.holderPid])
                #expect(history.count == 2, "one row before the change, one after")
                let parts = try history.map { try $0.decode("part", as: String.self) }
                // The closed row in yesterday's partition of the ended rows, the current one in the current partition (migration 030).
                #expect(parts.count == 2 && parts[0].hasPrefix("lock_monitoring.blocking_session_s_ended_p")
                        && parts[1] == "lock_monitoring.blocking_session_s_current", "the two rows live in two partitions: \(parts)")
                let firstEnd = try history.first?.decode("load_end_date", as: Date?.self)
                let secondStart = try history.last?.decode("load_date", as: Date.self)
                #expect(firstEnd != nil && firstEnd == secondStart, "the row before midnight ends where the one after begins")

                // The dashboards show one blocker and one waiting lock, as before midnight.
                let shown = try s.rows("SELECT blocking_severity FROM lock_monitoring.blocking_sessions_dashboard WHERE session_pid = $1", [sampled.holderPid])
                #expect(shown.count == 1)
                #expect(try shown.first?.decode("blocking_severity", as: String.self) == "CRITICAL")
                #expect(try Self.count(s.admin, "lock_monitoring.lock_activity_dashboard WHERE NOT granted") == 1)
                // The waiting lock's row, written before midnight, is still the current one (in the current partition).
                let lockPart = try s.rows("""
                    SELECT s.tableoid::regclass::text AS part FROM lock_monitoring.lock_activity_s s
                    WHERE NOT s.lock_granted AND s.load_end_date IS NULL AND s.load_date < $1
                    """, [boundary])
                #expect(try lockPart.map { try $0.decode("part", as: String.self) } == ["lock_monitoring.lock_activity_s_current"])
                let fleet = try FleetStatusRow.read(on: s.admin)
                #expect(fleet.count == 1 && fleet.first?.critical_blockers == 1 && fleet.first?.longest_wait_seconds != nil, "\(fleet)")
                try VaultConsistency.expectConsistent(s.admin)
            }
        }

        @Test func retentionDropsOldDaysButKeepsCurrentRowsAndTheirHubs() async throws {
            try await EngineScenario.run { s in
                let sampled = try await Self.sampleBlocking(s)
                let old = Date().addingTimeInterval(-40 * 86_400)
                let other = "fleet-b-\(s.database)"
                _ = try s.rows("SELECT * FROM lock_monitoring.create_history_partitions(($1::timestamptz AT TIME ZONE 'UTC')::date - 1, ($1::timestamptz AT TIME ZONE 'UTC')::date + 2)",
                               [old])
                // This cluster: a blocker seen 40 days ago, changed a second later, and current since.
                try Self.write(sampled, at: old, on: s.admin)
                try Self.write(sampled, at: old.addingTimeInterval(1), changed: true, on: s.admin)
                // Another cluster: the same situation 40 days ago, over a second later.
                try Self.write(sampled, at: old, systemIdentifier: other, on: s.admin)
                try Self.write(sampled, at: old.addingTimeInterval(1), empty: true, systemIdentifier: other, on: s.admin)
                let mine = "h.system_identifier = '\(sampled.systemIdentifier)'", theirs = "h.system_identifier = '\(other)'"
                let currentBefore = try Self.count(s.admin, "lock_monitoring.blocking_session_s s JOIN lock_monitoring.blocking_session_h h USING (blocking_session_hk) WHERE \(mine) AND s.load_end_date IS NULL")
                #expect(currentBefore == 1)
                let locksBefore = try Self.count(s.admin, "lock_monitoring.lock_activity_s s JOIN lock_monitoring.lock_activity_h h USING (lock_activity_hk) WHERE \(mine)")
                let oldDays = "lock_monitoring.history_partitions() WHERE NOT is_default AND range_end <= now() - interval '30 days'"
                #expect(try Self.count(s.admin, oldDays) > 0)

                let report = try s.rows("SELECT table_name, rows_deleted, partitions_dropped FROM lock_monitoring.cleanup_old_data(30)")
                    .reduce(into: [String: (Int64, Int)]()) { $0[try $1.decode("table_name", as: String.self)] = (try $1.decode("rows_deleted"), try $1.decode("partitions_dropped")) }
                // Removed: this cluster's superseded blocker row, and all of the other cluster's rows.
                #expect(report["blocking_session_s"]?.0 == 2, "\(report)")
                #expect((report["blocking_session_s"]?.1 ?? 0) >= 3, "whole days dropped: \(report)")
                #expect((report["lock_activity_s"]?.0 ?? 0) == Int64(locksBefore), "the other cluster's locks: \(report)")
                #expect((report["blocking_session_h"]?.0 ?? 0) >= 2, "the other cluster's session hubs, unreferenced now: \(report)")
                #expect(try Self.count(s.admin, oldDays) == 0, "no partition older than the retention is left")

                // Kept: the current rows, however old, and the hubs they point to; the dashboards show them.
                #expect(try Self.count(s.admin, "lock_monitoring.blocking_session_s s JOIN lock_monitoring.blocking_session_h h USING (blocking_session_hk) WHERE \(mine) AND s.load_end_date IS NULL") == 1)
                #expect(try Self.count(s.admin, "lock_monitoring.lock_activity_s s JOIN lock_monitoring.lock_activity_h h USING (lock_activity_hk) WHERE \(mine)") == locksBefore)
                #expect(try Self.count(s.admin, "lock_monitoring.blocking_session_h h WHERE \(mine)") >= 2, "the blocker's and the waiter's hubs")
                #expect(try Self.count(s.admin, "lock_monitoring.lock_blocking_l l JOIN lock_monitoring.lock_activity_h h USING (lock_activity_hk) WHERE \(mine)") == 1)
                #expect(try Self.count(s.admin, "lock_monitoring.blocking_sessions_dashboard WHERE session_pid = $1 AND system_identifier = '\(sampled.systemIdentifier)'", [sampled.holderPid]) == 1)
                #expect(try Self.count(s.admin, "lock_monitoring.blocking_session_s s JOIN lock_monitoring.blocking_session_h h USING (blocking_session_hk) WHERE \(theirs)") == 0)
                #expect(try Self.count(s.admin, "lock_monitoring.blocking_session_h h WHERE \(theirs)") == 0)
                #expect(try Self.count(s.admin, "lock_monitoring.lock_activity_h h WHERE \(theirs)") == 0)
                try VaultConsistency.expectConsistent(s.admin)

                // Running it again removes nothing more; the kept rows stay; the blocker goes on.
                let again = try s.rows("SELECT coalesce(sum(rows_deleted), 0)::int8 AS n FROM lock_monitoring.cleanup_old_data(30)")[0].decode("n", as: Int64.self)
                #expect(again == 0)
                try Self.write(sampled, at: Date(), on: s.admin)
                #expect(try Self.count(s.admin, "lock_monitoring.blocking_sessions_dashboard WHERE session_pid = $1", [sampled.holderPid]) == 1)
                try VaultConsistency.expectConsistent(s.admin)
            }
        }

        /// Retention looks only at the hubs the dropped rows referred to: one that a dropped day
        /// and a kept day both refer to (the same blocker seen 40 and 10 days ago, over both
        /// times — no current row holds it) stays, with its link; what only the dropped day had goes.
        @Test func retentionKeepsAHubThatAKeptDayStillRefersTo() async throws {
            try await EngineScenario.run { s in
                let sampled = try await Self.sampleBlocking(s)
                let old = Date().addingTimeInterval(-40 * 86_400), recent = Date().addingTimeInterval(-10 * 86_400)
                for day in [old, recent] {
                    _ = try s.rows("SELECT * FROM lock_monitoring.create_history_partitions(($1::timestamptz AT TIME ZONE 'UTC')::date - 1, ($1::timestamptz AT TIME ZONE 'UTC')::date + 2)",
                                   [day])
                }
                // The blocker 40 days ago, over a second later; the same one again 10 days ago, over a second later.
                try Self.write(sampled, at: old, on: s.admin)
                try Self.write(sampled, at: old.addingTimeInterval(1), empty: true, on: s.admin)
                try Self.write(sampled, at: recent, on: s.admin)
                try Self.write(sampled, at: recent.addingTimeInterval(1), empty: true, on: s.admin)
                let blocker = "lock_monitoring.blocking_session_s s JOIN lock_monitoring.blocking_session_h h USING (blocking_session_hk) WHERE h.session_pid = $1"
                #expect(try Self.count(s.admin, blocker, [sampled.holderPid]) == 2)
                #expect(try Self.count(s.admin, "lock_monitoring.blocking_session_s WHERE load_end_date IS NULL") == 0, "nothing is current")
                let hubs = try Self.count(s.admin, "lock_monitoring.blocking_session_h"), lockHubs = try Self.count(s.admin, "lock_monitoring.lock_activity_h")
                let locks = try Self.count(s.admin, "lock_monitoring.lock_activity_s")
                #expect(hubs >= 2 && lockHubs > 0 && locks == 2 * lockHubs, "each lock seen on both days")

                let report = try s.rows("SELECT table_name, rows_deleted FROM lock_monitoring.cleanup_old_data(30)")
                    .reduce(into: [String: Int64]()) { $0[try $1.decode("table_name", as: String.self)] = try $1.decode("rows_deleted") }
                #expect(report["blocking_session_s"] == 1 && report["lock_activity_s"] == Int64(lockHubs), "the old day's rows: \(report)")
                #expect(report["blocking_session_h"] == 0 && report["lock_activity_h"] == 0 && report["lock_blocking_l"] == 0, "\(report)")
                // Kept: the hubs and the link, and the rows from 10 days ago that refer to them.
                #expect(try Self.count(s.admin, "lock_monitoring.blocking_session_h") == hubs)
                #expect(try Self.count(s.admin, "lock_monitoring.lock_activity_h") == lockHubs)
                #expect(try Self.count(s.admin, "lock_monitoring.lock_blocking_l") == 1)
                #expect(try Self.count(s.admin, blocker, [sampled.holderPid]) == 1)
                try VaultConsistency.expectConsistent(s.admin)
            }
        }

        /// Retention as the daemon runs it (``RetentionRun``): cleanup_old_data, then a VACUUM of
        /// what it DELETEd from, so the hubs it removed leave no dead tuples behind. The daemon's
        /// least-privileged role gets the run done either way; it may vacuum from PostgreSQL 17
        /// on (MAINTAIN, migration 028), and before that it is told which tables autovacuum has.
        @Test func retentionAsTheDaemonRunsItLeavesNoDeadTuplesInTheHubs() async throws {
            try await EngineScenario.run { s in
                let sampled = try await Self.sampleBlocking(s)
                // The blocking ends first: the waiter's snapshot, older than the DELETEs, would keep
                // what they delete from any VACUUM (as any long transaction in the vault's database does).
                try await #require(s.sessions.first { $0.pid == sampled.holderPid }).run("COMMIT")
                try await waitUntil("no other session of the database holds a snapshot") {
                    try Self.count(s.admin, "pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_xmin IS NOT NULL") == 0
                }
                let old = Date().addingTimeInterval(-40 * 86_400)
                _ = try s.rows("SELECT * FROM lock_monitoring.create_history_partitions(($1::timestamptz AT TIME ZONE 'UTC')::date - 1, ($1::timestamptz AT TIME ZONE 'UTC')::date + 2)",
                               [old])
                // Two clusters gone 40 days ago: every row and hub of theirs goes.
                func writeGone(_ name: String) throws {
                    try Self.write(sampled, at: old, systemIdentifier: name, on: s.admin)
                    try Self.write(sampled, at: old.addingTimeInterval(1), empty: true, systemIdentifier: name, on: s.admin)
                }
                func deadTuples(_ conn: PostgresConnection) throws -> [String: Int] {
                    _ = try conn.query("SELECT pg_stat_clear_snapshot()")
                    return try conn.query("SELECT relname, n_dead_tup FROM pg_stat_user_tables WHERE schemaname = 'lock_monitoring' AND relname ~ '_[hl]$'")
                        .reduce(into: [:]) { $0[try $1.decode("relname", as: String.self)] = try $1.decode("n_dead_tup", as: Int.self) }
                }
                let hubs = "lock_monitoring.blocking_session_h h WHERE h.system_identifier LIKE 'gone-%'"
                let hasMaintain = s.admin.capabilities.has(.maintain)

                // As the vault's owner: the hubs are vacuumed.
                try writeGone("gone-a-\(s.database)")
                #expect(try Self.count(s.admin, hubs) >= 2)
                // A key a batch: the drop commits first, then one sweep transaction per retired key.
                let run = try RetentionRun.run(days: 30, on: s.admin, sweepBatchSize: 1)
                #expect(run.rowsRemoved > 0 && run.partitionsDropped > 0, "\(run)")
                #expect(run.sweepBatches > 1, "\(run)")
                #expect(try Self.count(s.admin, "lock_monitoring.retention_retired_key") == 0, "every retired key swept")
                #expect(try Self.count(s.admin, hubs) == 0, "the gone cluster's hubs are removed")
                for table in ["blocking_session_h", "lock_activity_h", "lock_blocking_l", "blocking_session_s_ended_default"] {
                    #expect(run.vacuumed.contains(table), "\(table): \(run)")
                }
                #expect(run.notVacuumed.isEmpty, "\(run)")
                // PostgreSQL 14's statistics collector answers from a file up to 500 ms old: wait, with a
                // deadline, until it shows the VACUUM (15 on keep the statistics in shared memory).
                func hubsClean(_ d: [String: Int]) -> Bool { d["blocking_session_h"] == 0 && d["lock_activity_h"] == 0 && d["lock_blocking_l"] == 0 }
                var dead = try deadTuples(s.admin)
                let settled = ContinuousClock.now + .seconds(5)
                while !hubsClean(dead), ContinuousClock.now < settled {
                    try await Task.sleep(for: .milliseconds(100))
                    dead = try deadTuples(s.admin)
                }
                #expect(hubsClean(dead), "\(dead)")
                // Nothing more to remove: no VACUUM either.
                let idle = try RetentionRun.run(days: 30, on: s.admin)
                #expect(idle.rowsRemoved == 0 && idle.partitionsDropped == 0 && idle.sweepBatches == 0 && idle.vacuumed.isEmpty, "\(idle)")

                // As the daemon's least-privileged role.
                _ = try s.rows("SELECT * FROM lock_monitoring.create_history_partitions(($1::timestamptz AT TIME ZONE 'UTC')::date - 1, ($1::timestamptz AT TIME ZONE 'UTC')::date + 2)",
                               [old])
                try writeGone("gone-b-\(s.database)")
                let writer = try LiveDatabase.connect(database: s.database, user: EngineScenario.leastPrivilegedRole)
                defer { writer.close() }
                let asWriter = try RetentionRun.run(days: 30, on: writer)
                #expect(asWriter.rowsRemoved > 0 && asWriter.partitionsDropped > 0, "\(asWriter)")
                #expect(try Self.count(s.admin, hubs) == 0)
                if hasMaintain {
                    #expect(asWriter.notVacuumed.isEmpty && asWriter.vacuumed.contains("blocking_session_h"), "MAINTAIN: \(asWriter)")
                    #expect(try deadTuples(s.admin)["blocking_session_h"] == 0)
                } else {
                    #expect(asWriter.vacuumed.isEmpty && asWriter.notVacuumed.contains("blocking_session_h"), "\(asWriter)")
                    let options = try s.admin.query("SELECT array_to_string(reloptions, ',') AS o FROM pg_class WHERE oid = 'lock_monitoring.blocking_session_h'::regclass")[0]
                        .decode("o", as: String.self)
                    #expect(options.contains("autovacuum_vacuum_scale_factor=0"), "autovacuum takes them soon: \(options)")
                }
                try VaultConsistency.expectConsistent(s.admin)
            }
        }

        /// The history has no foreign keys to its hubs (migration 023); the hub lock keeps a
        /// writer and retention apart. A blocker seen 40 days ago (in the default partition:
        /// no partition covers that day) is seen again now: a write that reuses its hub while
        /// retention would remove it makes retention wait and keep the hub; a write that comes
        /// while retention holds the lock waits for it and writes the hub again. Either way the
        /// current blocker has its hub and shows on the dashboard.
        @Test func aWriterRacingRetentionKeepsItsHub() async throws {
            try await EngineScenario.run { s in
                let sampled = try await Self.sampleBlocking(s)
                let old = Date().addingTimeInterval(-40 * 86_400)
                try Self.write(sampled, at: old, on: s.admin)
                try Self.write(sampled, at: old.addingTimeInterval(1), empty: true, on: s.admin)
                let hub = "lock_monitoring.blocking_session_h h WHERE h.session_pid = $1"
                let current = "lock_monitoring.blocking_session_s s JOIN lock_monitoring.blocking_session_h h USING (blocking_session_hk) WHERE h.session_pid = $1 AND s.load_end_date IS NULL"
                #expect(try Self.count(s.admin, hub, [sampled.holderPid]) == 1)
                #expect(try Self.count(s.admin, "lock_monitoring.history_partitions() WHERE NOT is_default AND range_end <= now() - interval '30 days'") == 0,
                        "nothing to drop: retention only deletes from the default partition")
                func waitingForHubLock(_ app: String) throws -> Bool {
                    try Self.count(s.admin, """
                        pg_locks l JOIN pg_stat_activity a USING (pid)
                        WHERE a.application_name = $1 AND l.locktype = 'advisory' AND NOT l.granted
                          AND ((l.classid::int8 << 32) | l.objid::int8) = lock_monitoring.hub_lock_key()
                        """, [app]) == 1
                }

                // 1. The writer first: it reuses the hub in a transaction still open when retention starts.
                let writer = try LiveDatabase.connect(database: s.database, user: EngineScenario.leastPrivilegedRole)
                defer { writer.close() }
                _ = try writer.execute("BEGIN")
                _ = try writer.query("SELECT lock_monitoring.record_cycle($1::jsonb)", [try Self.document(sampled, at: Date())])
                let retention = try await s.session("lv-retention")
                let run = retention.start("SELECT * FROM lock_monitoring.cleanup_old_data(30)")
                try await waitUntil("retention waits for the write in flight") { try waitingForHubLock("lv-retention") }
                _ = try writer.execute("COMMIT")
                try await run.value.get()
                #expect(try Self.count(s.admin, hub, [sampled.holderPid]) == 1, "the hub the write reused is kept")
                #expect(try Self.count(s.admin, current, [sampled.holderPid]) == 1)
                #expect(try Self.count(s.admin, "lock_monitoring.blocking_session_s WHERE load_date < now() - interval '30 days'") == 0, "the old row went")
                try VaultConsistency.expectConsistent(s.admin)

                // 2. Retention first: it removes the hub (its rows closed 40 days ago again) and holds the lock;
                // a write that comes meanwhile waits, then writes the hub again.
                try Self.write(sampled, at: Date().addingTimeInterval(1), empty: true, on: s.admin)
                _ = try s.admin.execute("UPDATE lock_monitoring.blocking_session_s SET load_date = load_date - interval '40 days', load_end_date = load_end_date - interval '40 days'")
                _ = try s.admin.execute("UPDATE lock_monitoring.blocking_session_h SET load_date = load_date - interval '40 days'")
                for table in ["lock_activity_s", "monitor_cycle_s"] {
                    _ = try s.admin.execute("DELETE FROM lock_monitoring.\(table)")
                }
                _ = try s.admin.execute("DELETE FROM lock_monitoring.lock_blocking_l")
                let cleaner = try LiveDatabase.connect(database: s.database)
                defer { cleaner.close() }
                _ = try cleaner.execute("BEGIN")
                let removed = try cleaner.query("SELECT rows_deleted FROM lock_monitoring.cleanup_old_data(30) WHERE table_name = 'blocking_session_h'")[0]
                    .decode("rows_deleted", as: Int64.self)
                #expect(removed >= 1, "retention removes the hub nothing refers to any more")
                try s.admin.executeScript("CREATE TABLE public.lv_pending (doc jsonb); GRANT SELECT ON public.lv_pending TO PUBLIC")
                _ = try s.admin.execute("INSERT INTO public.lv_pending VALUES ($1::jsonb)", [try Self.document(sampled, at: Date().addingTimeInterval(2))])
                let late = try await s.session("lv-late-writer", user: EngineScenario.leastPrivilegedRole)
                let write = late.start("SELECT lock_monitoring.record_cycle(doc) FROM public.lv_pending")
                try await waitUntil("the write waits for retention") { try waitingForHubLock("lv-late-writer") }
                _ = try cleaner.execute("COMMIT")
                try await write.value.get()
                #expect(try Self.count(s.admin, hub, [sampled.holderPid]) == 1, "the write made the hub again")
                #expect(try Self.count(s.admin, current, [sampled.holderPid]) == 1)
                #expect(try Self.count(s.admin, "lock_monitoring.blocking_sessions_dashboard WHERE session_pid = $1", [sampled.holderPid]) == 1)
                try VaultConsistency.expectConsistent(s.admin)

                // Its checks need a fresh snapshot after the lock: it refuses a transaction snapshot, and changes nothing.
                let hubsBefore = try Self.count(s.admin, "lock_monitoring.blocking_session_h")
                _ = try cleaner.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
                let refused = try #require(throws: PostgresError.self) { try cleaner.query("SELECT * FROM lock_monitoring.cleanup_old_data(1)") }
                _ = try cleaner.execute("ROLLBACK")
                #expect(refused.sqlState == "0A000" && refused.message.contains("READ COMMITTED"), "\(refused)")
                #expect(try Self.count(s.admin, "lock_monitoring.blocking_session_h") == hubsBefore)
            }
        }

        @Test func aWriteForADayWithoutAPartitionIsKeptAndMovedWhenItsPartitionIsCreated() async throws {
            try await EngineScenario.run { s in
                let sampled = try await Self.sampleBlocking(s)
                let ahead = Date().addingTimeInterval(30 * 86_400)
                // The daemon's own vault session (lock_writer_role) writes it.
                let writer = try LiveDatabase.connect(database: s.database, user: EngineScenario.leastPrivilegedRole)
                defer { writer.close() }
                func partitions(_ table: String) throws -> [String] {
                    try s.rows("SELECT s.tableoid::regclass::text AS part FROM lock_monitoring.\(table) s WHERE s.load_date = $1 ORDER BY 1", [ahead])
                        .map { try $0.decode("part", as: String.self) }
                }
                try Self.write(sampled, at: ahead, on: writer)
                // Current rows live in the current partition (migration 030), whatever their day.
                #expect(try partitions("blocking_session_s") == ["lock_monitoring.blocking_session_s_current"])
                #expect(try Self.count(s.admin, "lock_monitoring.blocking_sessions_dashboard WHERE session_pid = $1", [sampled.holderPid]) == 1)
                // The episode ends a second later: its closed rows are of a day no partition covers, and the
                // ended rows' default partition takes them.
                try Self.write(sampled, at: ahead.addingTimeInterval(1), empty: true, on: writer)
                #expect(try partitions("blocking_session_s") == ["lock_monitoring.blocking_session_s_ended_default"],
                        "no partition covers it: the default partition of the ended rows took it")
                let rowsAhead = try Self.count(s.admin, "lock_monitoring.lock_activity_s WHERE load_date = $1 AND load_end_date IS NOT NULL", [ahead])
                #expect(rowsAhead > 0)
                #expect(try Self.count(s.admin, "lock_monitoring.lock_activity_s WHERE load_date = $1", [ahead]) == rowsAhead)

                // The daemon's scheduled job, as that role, creates partitions up to that day: the rows move in.
                let created = try writer.query("SELECT table_name, rows_moved FROM lock_monitoring.ensure_history_partitions(31)")
                    .reduce(into: [String: Int64]()) { $0[try $1.decode("table_name", as: String.self), default: 0] += try $1.decode("rows_moved", as: Int64.self) }
                #expect(created["blocking_session_s"] == 1 && created["lock_activity_s"] == Int64(rowsAhead), "\(created)")
                let moved = try partitions("blocking_session_s")
                #expect(moved.count == 1 && moved.first?.hasPrefix("lock_monitoring.blocking_session_s_ended_p") == true, "\(moved)")
                #expect(try Self.count(s.admin, "lock_monitoring.lock_activity_s WHERE load_date = $1", [ahead]) == rowsAhead)
                #expect(try Self.count(s.admin, "ONLY lock_monitoring.blocking_session_s_ended_default") == 0)
                // Creating again does nothing; a steady cycle after it writes nothing new.
                #expect(try writer.query("SELECT * FROM lock_monitoring.ensure_history_partitions(31)").isEmpty)
                let rowsBefore = try Self.count(s.admin, "lock_monitoring.blocking_session_s")
                try Self.write(sampled, at: ahead.addingTimeInterval(2), empty: true, on: writer)
                #expect(try Self.count(s.admin, "lock_monitoring.blocking_session_s") == rowsBefore)
                try VaultConsistency.expectConsistent(s.admin)
            }
        }

        /// The vault as today's lockvault (before partitioning) builds it: its numbered migrations
        /// and its functions and views, frozen in Tests/Fixtures/vault-v2.
        static let v2Fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/vault-v2")

        static func v2Migrations() throws -> [Migration] {
            func sqlFiles(_ dir: URL) throws -> [String] {
                try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".sql") }.sorted()
            }
            func text(_ url: URL) throws -> String {
                var t = try String(contentsOf: url, encoding: .utf8)
                if t.hasSuffix("\n") { t.removeLast() }
                return t
            }
            let numbered = try sqlFiles(v2Fixtures).map { Migration(name: $0, sql: try text(v2Fixtures.appendingPathComponent($0))) }
            var set: [Migration.File] = []
            for folder in ["functions", "views"] {
                let dir = v2Fixtures.appendingPathComponent(folder)
                set += try sqlFiles(dir).map { Migration.File(path: "\(folder)/\($0)", sql: try text(dir.appendingPathComponent($0))) }
            }
            return numbered + [Migration(repeatable: set)]
        }

        /// The history both upgrade tests give the old vault: 40 days ago, a blocker that changed and
        /// another cluster's (fleet-b) that ended; a minute ago, a blocker of the sampled cluster
        /// or of `recentSystemIdentifier`.
        static func writeOldHistory(_ sampled: Sampled, recentSystemIdentifier: String? = nil, on conn: PostgresConnection) throws {
            let longAgo = Date().addingTimeInterval(-40 * 86_400)
            try write(sampled, at: longAgo, on: conn)
            try write(sampled, at: longAgo.addingTimeInterval(1), changed: true, on: conn)
            try write(sampled, at: longAgo, systemIdentifier: "fleet-b", on: conn)
            try write(sampled, at: longAgo.addingTimeInterval(5), empty: true, systemIdentifier: "fleet-b", on: conn)
            try write(sampled, at: Date().addingTimeInterval(-60), systemIdentifier: recentSystemIdentifier, on: conn)
        }

        @Test func aVaultBuiltByTheMigrationsBeforePartitioningUpgradesWithEveryRowKept() async throws {
            try await LiveDatabase.withTemporaryDatabase { db in
                let setup = try LiveDatabase.connect(database: db)
                defer { setup.close() }
                let old = try Self.v2Migrations()
                #expect(try Migrator(migrations: old, superseded: [:]).apply(on: setup).count == old.count)
                let s = try EngineScenario(database: db, migrator: nil)
                do {
                    // History written by the writer into the old vault: a blocker that changed, one that ended, 40 days ago and now.
                    let sampled = try await Self.sampleBlocking(s)
                    try Self.writeOldHistory(sampled, on: s.admin)
                    let columns = try VaultUpgradeLiveTests.columns(s.admin)
                    let before = try VaultUpgradeLiveTests.contents(s.admin, columns: columns)
                    #expect(before.values.reduce(0) { $0 + $1.count } > 20)
                    let dashboards = [
                        "SELECT session_pid, blocking_severity, blocked_sessions_count, system_identifier, recorded_at FROM lock_monitoring.blocking_sessions_dashboard",
                        "SELECT session_pid, granted, lock_mode, lock_target, system_identifier, recorded_at FROM lock_monitoring.lock_activity_dashboard",
                        "SELECT * FROM lock_monitoring.deadlock_events_dashboard",
                    ]
                    func shown() throws -> [[String]] {
                        try dashboards.map { q in try s.rows("SELECT d::text AS r FROM (\(q)) d ORDER BY 1").map { try $0.decode("r", as: String.self) } }
                    }
                    let shownBefore = try shown()

                    let later = Migration.embedded.filter { m in m.kind == .versioned && !old.contains { $0.name == m.name } }.map(\.name)
                    #expect(later.contains("020_partitioned_history.sql"))
                    #expect(try Migrator().apply(on: s.admin) == later + [Migration.repeatableName])
                    #expect(try VaultUpgradeLiveTests.contents(s.admin, columns: columns) == before, "no row lost or changed by partitioning")
                    #expect(try shown() == shownBefore, "the dashboards show the same")
                    let partitioned = try s.rows("SELECT table_name FROM lock_monitoring.history_partitioning ORDER BY 1").map { try $0.decode("table_name", as: String.self) }
                    for table in partitioned {
                        #expect(try s.rows("SELECT relkind::text AS k FROM pg_class WHERE oid = $1::regclass", ["lock_monitoring.\(table)"])[0].decode("k", as: String.self) == "p", "\(table)")
                    }
                    #expect(try Self.count(s.admin, "lock_monitoring.history_partitions() WHERE range_end <= now() - interval '39 days'") > 0,
                            "the old days got their partitions")
                    // The new writer goes on with the same history: a steady cycle adds no blocker row.
                    let rows = try Self.count(s.admin, "lock_monitoring.blocking_session_s")
                    try Self.write(sampled, at: Date(), on: s.admin)
                    #expect(try Self.count(s.admin, "lock_monitoring.blocking_session_s") == rows)
                    // Retention on the upgraded vault: the old day goes, the current rows stay.
                    let removed = try s.rows("SELECT coalesce(sum(rows_deleted), 0)::int8 AS n FROM lock_monitoring.cleanup_old_data(30)")[0].decode("n", as: Int64.self)
                    #expect(removed > 0)
                    #expect(try Self.count(s.admin, "lock_monitoring.blocking_sessions_dashboard WHERE session_pid = $1", [sampled.holderPid]) == 1)
                    try VaultConsistency.expectConsistent(s.admin)
                    await s.close()
                } catch {
                    await s.close()
                    throw error
                }
            }
        }

        /// The daemon runs retention on its vault session, whose statement_timeout is made for a
        /// cycle's write (`sampling.statement_timeout_ms`); a fleet's day takes longer to drop. Its
        /// runs have their own (`schedule.retention_statement_timeout_ms`), and the session gets its
        /// own back.
        @Test func theDaemonsRetentionRunsUnderItsOwnStatementTimeout() async throws {
            try await EngineScenario.run { s in
                // Another run holds the retention lock (as another instance of the fleet would), so this one waits.
                let turn = "pg_advisory_lock(hashtext('lock_monitoring history partitions'))"
                let other = try LiveDatabase.connect(database: s.database)
                defer { other.close() }
                _ = try other.query("SELECT \(turn)")
                let daemon = try await BackgroundSession(database: s.database, applicationName: "lv-retention-timeout")
                try await daemon.run("SET statement_timeout = 300")
                // Under the session's 300 ms the run is cancelled.
                let cancelled: String? = try await daemon.session.withConnection { conn in
                    do { _ = try RetentionRun.run(days: 30, on: conn); return nil } catch let error as PostgresError { return error.sqlState ?? "none" }
                }
                #expect(cancelled == "57014", "statement_timeout cancels it")
                // Under its own it waits past 300 ms and finishes once the other run is done.
                let run = Task { try await daemon.session.withConnection { conn in try RetentionRun.run(days: 30, on: conn, statementTimeoutMs: 60_000) } }
                try await waitUntil("the run has waited a second for its turn") {
                    try Self.count(s.admin, """
                        pg_stat_activity WHERE application_name = 'lv-retention-timeout' AND wait_event_type = 'Lock'
                          AND clock_timestamp() - query_start > interval '1 second'
                        """) == 1
                }
                _ = try other.query("SELECT pg_advisory_unlock_all()")
                let finished = try await run.value
                #expect(finished.partitionsDropped == 0 && finished.rowsRemoved == 0, "\(finished)")
                let timeout: String = try await daemon.session.withConnection { conn in try conn.query("SHOW statement_timeout")[0].decode("statement_timeout") }
                #expect(timeout == "300ms", "the session's own statement_timeout is back")
                await daemon.close()
            }
        }

        /// A vault built by the migrations before 030 (current rows anywhere in the days) upgrades
        /// with every row kept, its current rows moved to the current partitions, and the writer
        /// and retention going on with the same history.
        @Test func aVaultWithCurrentRowsInItsDaysUpgradesWithEveryRowKept() async throws {
            try await LiveDatabase.withTemporaryDatabase { db in
                let setup = try LiveDatabase.connect(database: db)
                defer { setup.close() }
                let before030 = OlderVaults.before("030")
                #expect(try Migrator(migrations: before030, superseded: [:]).apply(on: setup).count == before030.count)
                let s = try EngineScenario(database: db, migrator: nil)
                do {
                    // A blocker that changed and one that ended, 40 days ago (no partition: the default took them), and one now.
                    let sampled = try await Self.sampleBlocking(s)
                    try Self.writeOldHistory(sampled, recentSystemIdentifier: "fleet-c", on: s.admin)
                    // The tables themselves, not their partitions (the migration renames those).
                    let partitions = Set(try s.rows("SELECT relname::text AS n FROM pg_class WHERE relnamespace = 'lock_monitoring'::regnamespace AND relispartition")
                        .map { try $0.decode("n", as: String.self) })
                    // history_partitioning changes (range_table, and keep_when by migration 032): it is compared below.
                    let columns = try VaultUpgradeLiveTests.columns(s.admin).filter { !partitions.contains($0.key) && $0.key != "history_partitioning" }
                    let before = try VaultUpgradeLiveTests.contents(s.admin, columns: columns)
                    let currentBefore = try Self.count(s.admin, "lock_monitoring.blocking_session_s WHERE load_end_date IS NULL")
                    #expect(currentBefore == 2 && before.values.reduce(0) { $0 + $1.count } > 20)
                    let shownBefore = try s.rows("SELECT ROW(d.session_pid, d.blocking_severity, d.blocked_sessions_count, d.system_identifier, d.recorded_at)::text AS r FROM lock_monitoring.blocking_sessions_dashboard d ORDER BY 1").map { try $0.decode("r", as: String.self) }

                    let later = Migration.embedded.filter { m in m.kind == .versioned && !before030.contains { $0.name == m.name } }.map(\.name)
                    #expect(later.first == "030_current_rows_apart.sql")
                    #expect(try Migrator().apply(on: s.admin) == later + [Migration.repeatableName])
                    #expect(try VaultUpgradeLiveTests.contents(s.admin, columns: columns) == before, "no row lost or changed")
                    #expect(try s.rows("SELECT ROW(d.session_pid, d.blocking_severity, d.blocked_sessions_count, d.system_identifier, d.recorded_at)::text AS r FROM lock_monitoring.blocking_sessions_dashboard d ORDER BY 1").map { try $0.decode("r", as: String.self) } == shownBefore)
                    let tables = try s.rows("SELECT table_name, range_table FROM lock_monitoring.history_partitioning ORDER BY 1")
                        .map { (try $0.decode("table_name", as: String.self), try $0.decode("range_table", as: String.self)) }
                    // The state satellites; the deadlocks' are point events, by day alone (migration 032).
                    #expect(tables.filter { $0.0 != $0.1 }.map(\.0) == ["blocking_session_s", "deadlock_counter_s", "lock_activity_s", "monitor_cycle_s"],
                            "the state satellites: \(tables)")
                    for (table, days) in tables where table != days {
                        #expect(days == table + "_ended")
                        #expect(try Self.count(s.admin, "ONLY lock_monitoring.\(table)_current WHERE load_end_date IS NOT NULL") == 0, "\(table)")
                        #expect(try Self.count(s.admin, "lock_monitoring.\(days) WHERE load_end_date IS NULL") == 0, "\(table)")
                    }
                    #expect(try Self.count(s.admin, "ONLY lock_monitoring.blocking_session_s_current") == currentBefore)
                    // The writer goes on: a steady cycle adds nothing; the old day's blocker ends and moves into the ended rows.
                    let rows = try Self.count(s.admin, "lock_monitoring.blocking_session_s")
                    try Self.write(sampled, at: Date(), systemIdentifier: "fleet-c", on: s.admin)
                    #expect(try Self.count(s.admin, "lock_monitoring.blocking_session_s") == rows)
                    try Self.write(sampled, at: Date(), empty: true, on: s.admin)
                    #expect(try Self.count(s.admin, "ONLY lock_monitoring.blocking_session_s_current") == currentBefore - 1)
                    #expect(try Self.count(s.admin, "lock_monitoring.blocking_session_s") == rows)
                    // Retention: the old closed rows go, the current one stays, however old it is not.
                    let removed = try s.rows("SELECT coalesce(sum(rows_deleted), 0)::int8 AS n FROM lock_monitoring.cleanup_old_data(30)")[0].decode("n", as: Int64.self)
                    #expect(removed > 0)
                    #expect(try Self.count(s.admin, "lock_monitoring.blocking_sessions_dashboard WHERE system_identifier = 'fleet-c'") == 1)
                    try VaultConsistency.expectConsistent(s.admin)
                    await s.close()
                } catch {
                    await s.close()
                    throw error
                }
            }
        }
    }
}
