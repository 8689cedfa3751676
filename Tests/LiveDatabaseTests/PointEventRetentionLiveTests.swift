import Foundation
import LockvaultCore
@testable import LockvaultEngine
import PostgresClient
import TestSupport
import Testing

/// Point events — deadlocks, alerts, monitor gaps, resolve decisions — leave with retention by
/// their own time, however "current" their last row is; a blocker that is blocking now stays,
/// however old (migration 032). What a DBA sees: deadlock_events_dashboard and alerts_dashboard
/// show the retention's worth of events, and blocking_sessions_dashboard still shows the blocker.
///
/// The cycles are real (a real blocker and waiter, sampled by the Monitor, encoded by the
/// daemon's own CycleRecord with a deadlock between the two); only their sample time, and the
/// deadlock's time and key, are moved, to put them 40 days back or 2 days back.
extension LiveDatabaseSuite {
    @Suite struct PointEventRetentionLiveTests {
        typealias Part = PartitionedHistoryLiveTests

        /// A sampled cycle with a blocker, a waiter and a deadlock between the two.
        static func sampleWithDeadlock(_ s: EngineScenario) async throws -> Part.Sampled {
            try s.admin.executeScript("CREATE TABLE t (id int); GRANT ALL ON t TO PUBLIC")
            let holder = try await s.session("lv-event-holder"), waiter = try await s.session("lv-event-waiter")
            try await holder.run("BEGIN", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
            _ = waiter.start("SELECT count(*) FROM t")
            try await s.waitForWaiters(1)
            let outcome = await s.monitor.runCycle(write: false)
            let snapshot = try #require(outcome.snapshot)
            let deadlock = DeadlockEvent(
                eventKey: "dl", database: s.database, detectedAt: snapshot.capturedAt, sources: [.graph],
                participants: [DeadlockParticipant(pid: holder.pid, waitsFor: "ShareLock on transaction 1", blockedBy: waiter.pid, query: "SELECT 1"),
                               DeadlockParticipant(pid: waiter.pid, waitsFor: "AccessShareLock on relation t", blockedBy: holder.pid, query: "SELECT count(*) FROM t")])
            let record = CycleRecord(
                snapshot: snapshot, assessments: outcome.assessments, graph: WaitGraph(snapshot), deadlocks: [deadlock], decisions: [],
                rulings: outcome.rulings, context: RecordContext(clusterName: "events", recordSource: "test", killThresholdSeconds: 0), heartbeatSeconds: 3600,
                    cycleMilliseconds: 1, gap: nil)
            let document = try #require(try JSONSerialization.jsonObject(with: Data(try record.encoded().utf8)) as? [String: Any])
            #expect((document["deadlocks"] as? [Any])?.count == 1 && (document["deadlock_participants"] as? [Any])?.count == 2, "\(document.keys)")
            return Part.Sampled(document: document, holderPid: holder.pid, systemIdentifier: snapshot.systemIdentifier)
        }

        /// The deadlock of `sampled` as deadlock `key`, detected at `at`; `detail` gives it the
        /// server log's detail (a later source: a new row, the first one ended).
        static func withDeadlock(_ sampled: Part.Sampled, key: String, at: Date, detail: Bool = false) -> Part.Sampled {
            var d = sampled.document
            if var events = d["deadlocks"] as? [[String: Any]] {
                for i in events.indices {
                    events[i]["deadlock_event"] = ["database_name": events[i]["database_name"] ?? "", "event_key": key]
                    events[i]["detected_at"] = PostgresTimestamp.format(at)
                    if detail {
                        events[i]["sources"] = ["graph", "server_log"]
                        events[i]["details"] = "Process 1 waits for ShareLock on transaction 1"
                        events[i]["hash_diff"] = "\\x" + String(repeating: "de", count: 32)
                    }
                }
                d["deadlocks"] = events
            }
            if var participants = d["deadlock_participants"] as? [[String: Any]] {
                for i in participants.indices {
                    var event = participants[i]["deadlock_event"] as? [String: Any] ?? [:]
                    event["event_key"] = key
                    participants[i]["deadlock_event"] = event
                }
                d["deadlock_participants"] = participants
            }
            return Part.Sampled(document: d, holderPid: sampled.holderPid, systemIdentifier: sampled.systemIdentifier)
        }

        /// A blocker's alert, raised at `at`, as record_alerts writes it (the hub first seen then).
        static func writeAlert(_ id: String, at: Date, systemIdentifier: String, on conn: PostgresConnection) throws {
            _ = try conn.transaction { tx in
                _ = try tx.query("""
                    INSERT INTO lock_monitoring.alert_h (alert_hk, alert_id, cluster_hk, load_date, record_source)
                    VALUES (lock_monitoring.hash_key($1), $1, lock_monitoring.hash_key($2), $3, 'test')
                    """, [id, systemIdentifier, at])
                _ = try tx.query("""
                    INSERT INTO lock_monitoring.alert_event_s (alert_hk, event_at, kind, load_date, record_source, severity, summary, payload)
                    VALUES (lock_monitoring.hash_key($1), $2, 'raised', $2, 'test', 'HIGH', $1, '{}'::jsonb)
                    """, [id, at])
            }
        }

        /// What a DBA reads: the deadlocks' keys, the alerts' summaries, the blockers' pids.
        struct Shown: Equatable {
            var deadlocks: [String]
            var deadlockHubs: [String]
            var alerts: [String]
            var blockers: [Int32]

            static func read(_ conn: PostgresConnection) throws -> Shown {
                Shown(deadlocks: try conn.query("SELECT event_key FROM lock_monitoring.deadlock_events_dashboard ORDER BY 1").map { try $0.decode("event_key") },
                      deadlockHubs: try conn.query("SELECT event_key FROM lock_monitoring.deadlock_event_h ORDER BY 1").map { try $0.decode("event_key") },
                      alerts: try conn.query("SELECT summary FROM lock_monitoring.alerts_dashboard ORDER BY 1").map { try $0.decode("summary") },
                      blockers: try conn.query("SELECT session_pid FROM lock_monitoring.blocking_sessions_dashboard ORDER BY 1").map { try $0.decode("session_pid") })
            }
        }

        /// 40 days ago: the blocker appears (and is still blocking: its row stays current), a
        /// deadlock is seen and a second later given the server log's detail, an alert is
        /// raised, the monitor had a gap. 2 days ago: another deadlock, another alert.
        /// Without `partitions`, the old days get none (the default partitions take their rows),
        /// as before an upgrade, whose functions are not those of this version.
        static func writeEvents(_ sampled: Part.Sampled, partitions: Bool = true, on conn: PostgresConnection) throws -> (old: Date, recent: Date) {
            let old = Date().addingTimeInterval(-40 * 86_400), recent = Date().addingTimeInterval(-2 * 86_400)
            for day in [old, recent] where partitions {
                _ = try conn.query("SELECT * FROM lock_monitoring.create_history_partitions(($1::timestamptz AT TIME ZONE 'UTC')::date - 1, ($1::timestamptz AT TIME ZONE 'UTC')::date + 2)",
                                   [day])
            }
            try Part.write(Self.withDeadlock(sampled, key: "dl-old", at: old), at: old, on: conn)
            try Part.write(Self.withDeadlock(sampled, key: "dl-old", at: old, detail: true), at: old.addingTimeInterval(1), on: conn)
            _ = try conn.query("""
                SELECT lock_monitoring.record_monitor_gap($1, 'test', jsonb_build_object('gap_start', $2::timestamptz, 'gap_end', $3::timestamptz,
                       'reason', 'vault unreachable', 'hash_diff', '\\x' || repeat('aa', 32)))
                """, [sampled.systemIdentifier, old.addingTimeInterval(-60), old.addingTimeInterval(-30)])
            try Self.writeAlert("alert-old", at: old, systemIdentifier: sampled.systemIdentifier, on: conn)
            try Part.write(Self.withDeadlock(sampled, key: "dl-recent", at: recent), at: recent, on: conn)
            try Self.writeAlert("alert-recent", at: recent, systemIdentifier: sampled.systemIdentifier, on: conn)
            return (old, recent)
        }

        @Test func oldDeadlocksAlertsAndGapsLeaveNewOnesAndTheCurrentBlockerStay() async throws {
            try await EngineScenario.run { s in
                let sampled = try await Self.sampleWithDeadlock(s)
                let (old, _) = try Self.writeEvents(sampled, on: s.admin)
                let before = try Shown.read(s.admin)
                #expect(before == Shown(deadlocks: ["dl-old", "dl-recent"], deadlockHubs: ["dl-old", "dl-recent"], alerts: ["alert-old", "alert-recent"],
                                        blockers: [sampled.holderPid]), "\(before)")
                // The old deadlock's rows, the current one too, are in its day's partition: retention drops them whole.
                let parts = try s.rows("""
                    SELECT DISTINCT s.tableoid::regclass::text AS p FROM lock_monitoring.deadlock_event_s s
                    JOIN lock_monitoring.deadlock_event_h h USING (deadlock_event_hk) WHERE h.event_key = 'dl-old'
                    """).map { try $0.decode("p", as: String.self) }
                #expect(parts == ["lock_monitoring.deadlock_event_s_p" + Self.day(old)], "\(parts)")
                let alertParts = try s.rows("SELECT DISTINCT tableoid::regclass::text AS p FROM lock_monitoring.alert_event_s WHERE summary = 'alert-old'")
                    .map { try $0.decode("p", as: String.self) }
                #expect(alertParts == ["lock_monitoring.alert_event_s_p" + Self.day(old)], "the alert trail by day of event_at: \(alertParts)")

                let report = try s.rows("SELECT table_name, rows_deleted, partitions_dropped FROM lock_monitoring.cleanup_old_data(30)")
                    .reduce(into: [String: (Int64, Int)]()) { $0[try $1.decode("table_name", as: String.self)] = (try $1.decode("rows_deleted"), try $1.decode("partitions_dropped")) }
                #expect(report["deadlock_event_s"]?.0 == 2 && (report["deadlock_event_s"]?.1 ?? 0) >= 1, "\(report)")
                #expect(report["deadlock_involvement_s"]?.0 == 2, "\(report)")
                #expect(report["monitor_gap_s"]?.0 == 1, "\(report)")
                #expect(report["alert_event_s"]?.0 == 1 && (report["alert_event_s"]?.1 ?? 0) >= 1, "\(report)")

                let after = try Shown.read(s.admin)
                #expect(after == Shown(deadlocks: ["dl-recent"], deadlockHubs: ["dl-recent"], alerts: ["alert-recent"], blockers: [sampled.holderPid]), "\(after)")
                #expect(try Part.count(s.admin, "lock_monitoring.deadlock_involvement_l") == 2, "the recent deadlock's two participants")
                #expect(try Part.count(s.admin, "lock_monitoring.monitor_gap_s") == 0)
                #expect(try Part.count(s.admin, "lock_monitoring.alert_h WHERE alert_id = 'alert-old'") == 0)
                // The blocker's row of 40 days ago is current: it stays, and so do its hubs.
                #expect(try Part.count(s.admin, "lock_monitoring.blocking_session_s WHERE load_end_date IS NULL AND load_date < now() - interval '30 days'") == 1)
                try VaultConsistency.expectConsistent(s.admin)
                let again = try s.rows("SELECT coalesce(sum(rows_deleted), 0)::int8 AS n FROM lock_monitoring.cleanup_old_data(30)")[0].decode("n", as: Int64.self)
                #expect(again == 0)
            }
        }

        /// A vault built by the migrations before 032 kept every deadlock's last row in
        /// deadlock_event_s_current; migrated, it keeps every row, and the next run drops the old ones.
        @Test func anUpgradedVaultLosesItsOldPointEventsAtTheNextRun() async throws {
            try await LiveDatabase.withTemporaryDatabase { db in
                let setup = try LiveDatabase.connect(database: db)
                defer { setup.close() }
                let before032 = OlderVaults.before("032")
                #expect(try Migrator(migrations: before032, superseded: [:]).apply(on: setup).count == before032.count)
                let s = try EngineScenario(database: db, migrator: nil)
                do {
                    let sampled = try await Self.sampleWithDeadlock(s)
                    _ = try Self.writeEvents(sampled, partitions: false, on: s.admin)
                    #expect(try Part.count(s.admin, "ONLY lock_monitoring.deadlock_event_s_current") == 2, "both deadlocks' last rows are 'current'")
                    let partitions = Set(try s.rows("SELECT relname::text AS n FROM pg_class WHERE relnamespace = 'lock_monitoring'::regnamespace AND relispartition")
                        .map { try $0.decode("n", as: String.self) })
                    // history_partitioning changes: it is compared below.
                    let columns = try VaultUpgradeLiveTests.columns(s.admin).filter { !partitions.contains($0.key) && $0.key != "history_partitioning" }
                    let contents = try VaultUpgradeLiveTests.contents(s.admin, columns: columns)
                    let shown = try Shown.read(s.admin)

                    let later = Migration.embedded.filter { m in m.kind == .versioned && !before032.contains { $0.name == m.name } }.map(\.name)
                    #expect(later.first == "032_point_events_by_day.sql")
                    #expect(try Migrator().apply(on: s.admin) == later + [Migration.repeatableName])
                    #expect(try VaultUpgradeLiveTests.contents(s.admin, columns: columns) == contents, "no row lost or changed")
                    #expect(try Shown.read(s.admin) == shown)
                    let layout = try s.rows("""
                        SELECT concat_ws(' ', c.relname, p.partstrat, h.range_table, h.partition_column, h.keep_when) AS l
                        FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid
                        JOIN lock_monitoring.history_partitioning h ON h.table_name = c.relname::text
                        WHERE c.relname IN ('deadlock_event_s', 'deadlock_involvement_s', 'alert_event_s', 'alert_delivery_s') ORDER BY 1
                        """).map { try $0.decode("l", as: String.self) }
                    #expect(layout == ["alert_delivery_s r alert_delivery_s event_at false", "alert_event_s r alert_event_s event_at false",
                                       "deadlock_event_s r deadlock_event_s load_date false", "deadlock_involvement_s r deadlock_involvement_s load_date false"],
                            "\(layout)")
                    #expect(try Part.count(s.admin, "pg_class WHERE relkind IN ('r', 'p') AND relname ~ '^deadlock_(event|involvement)_s_(current|ended)'") == 0)

                    // A deadlock recorded after the upgrade is written and shown as before.
                    try Part.write(Self.withDeadlock(sampled, key: "dl-now", at: Date()), at: Date(), on: s.admin)
                    _ = try s.rows("SELECT * FROM lock_monitoring.cleanup_old_data(30)")
                    let after = try Shown.read(s.admin)
                    #expect(after == Shown(deadlocks: ["dl-now", "dl-recent"], deadlockHubs: ["dl-now", "dl-recent"], alerts: ["alert-recent"],
                                           blockers: [sampled.holderPid]), "\(after)")
                    try VaultConsistency.expectConsistent(s.admin)
                    await s.close()
                } catch {
                    await s.close()
                    throw error
                }
            }
        }

        /// `lockvault run` as installed: retention on a short schedule (every second) while it
        /// samples a real blocker every 200 ms. The days older than the retention go, the old
        /// point events with them; every cycle still runs on time, no gap is recorded, and the
        /// dashboards answer all along.
        @Test func theDaemonsScheduledRetentionRunsWhileItSamples() async throws {
            try await EngineScenario.run { s in
                let sampled = try await Self.sampleWithDeadlock(s)
                _ = try Self.writeEvents(sampled, on: s.admin)
                let oldDays = "lock_monitoring.history_partitions() WHERE NOT is_default AND range_end <= now() - interval '30 days'"
                #expect(try Part.count(s.admin, oldDays) > 0)
                let started = Date()
                let configPath = try writeTemporaryConfig(DaemonLiveTests.config(
                    database: s.database, interval: 0.2, extra: "schedule: { cleanup_interval_seconds: 1, retention_days: 30 }\nlogging: { level: debug }"))
                defer { unlink(configPath) }
                let daemon = try await ChildProcess(lockvault: ["run", "--config", configPath], combinedOutput: true)
                let reader = try LiveDatabase.connect(database: s.database, applicationName: "lv-test-dba")
                defer { reader.close() }
                var reads = 0
                func runs() -> Int { daemon.output.components(separatedBy: "\"msg\":\"cleanup_old_data\"").count - 1 }
                // A DBA reads the dashboards all along; three scheduled runs, the old days gone.
                try await waitUntil("three scheduled retention runs and no day older than 30 days", timeout: .seconds(60), every: .milliseconds(100)) {
                    _ = try Shown.read(reader)
                    _ = try reader.query("SELECT * FROM lock_monitoring.fleet_dashboard")
                    reads += 1
                    let left = try Part.count(reader, oldDays)
                    return runs() >= 3 && left == 0
                }
                let shown = try Shown.read(reader)
                #expect(shown.deadlocks == ["dl-recent"] && shown.deadlockHubs == ["dl-recent"], "\(shown)")
                #expect(!shown.alerts.contains("alert-old") && shown.alerts.contains("alert-recent"), "\(shown)")
                #expect(shown.blockers == [sampled.holderPid], "the blocker of 40 days ago is still blocking: \(shown)")
                #expect(daemon.output.contains("\"partitions_dropped\":\"") && !daemon.output.contains("cleanup_old_data failed"), "\(daemon.output.suffix(2000))")
                #expect(reads > 10)

                // Every cycle ran: no gap recorded, and no two cycles further apart than a few intervals.
                // (The gap it records at start is the time it did not run: it begins before `started`.)
                let gaps = try reader.query("SELECT ROW(gap_start, gap_end, reason)::text AS g FROM lock_monitoring.monitor_gap_s WHERE gap_start > $1", [started])
                    .map { try $0.decode("g", as: String.self) }
                #expect(gaps.isEmpty, "\(gaps)")
                let times = daemon.output.split(separator: "\n").filter { $0.contains("\"msg\":\"cycle\"") }.compactMap { line -> Date? in
                    guard let r = line.range(of: "\"ts\":\""), let end = line[r.upperBound...].firstIndex(of: "\"") else { return nil }
                    return Self.timestamp(String(line[r.upperBound..<end]))
                }
                #expect(times.count >= 10, "\(daemon.output.suffix(2000))")
                let longest = zip(times.dropFirst(), times).map { $0.timeIntervalSince($1) }.max() ?? 0
                #expect(longest < 2, "cycles every 0.2 s; the longest pause was \(longest) s")
                daemon.signal(SIGTERM)
                #expect(try await daemon.waitForExit().status == 0, "\(daemon.output.suffix(2000))")
                try VaultConsistency.expectConsistent(s.admin)
            }
        }

        /// The JSON log's ts (ISO 8601 with milliseconds).
        static func timestamp(_ text: String) -> Date? {
            let f = ISO8601DateFormatter()
            f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            return f.date(from: text)
        }

        /// YYYYMMDD of `date`'s UTC day, as the day partitions are named.
        static func day(_ date: Date) -> String {
            let f = DateFormatter()
            f.locale = Locale(identifier: "en_US_POSIX")
            f.timeZone = TimeZone(identifier: "UTC")
            f.dateFormat = "yyyyMMdd"
            return f.string(from: date)
        }
    }
}
