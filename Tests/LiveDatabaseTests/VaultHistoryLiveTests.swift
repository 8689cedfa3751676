import Foundation
import LockvaultEngine
import PostgresClient
import Testing

/// Hand-built history written through record_cycle(), then read back through the dashboards,
/// analyze_lock_waits() and cleanup_old_data().
extension LiveDatabaseSuite {
    @Suite struct VaultHistoryLiveTests {
        static let sysid = "7000000000000000001"

        /// The blocking_session_h business key of a session, as record_cycle reads it.
        static func sessionKey(pid: Int, start: String) -> [String: Any] {
            ["session_kind": "session", "session_pid": pid, "session_start": start]
        }

        /// A hash diff as the daemon sends it (bytea hex input); any bytes that differ per state do.
        static func hashDiff(_ text: String) -> String { "\\x" + text.utf8.map { String(format: "%02x", $0) }.joined() }

        static func blocker(pid: Int, start: String, severity: String, blocked: [Int], since: String, state: String = "idle in transaction") -> [String: Any] {
            [
                "blocking_session": sessionKey(pid: pid, start: start), "session_pid": pid, "user_name": "app", "application_name": "web",
                "database_name": "shop", "backend_type": "client backend", "session_state": state, "is_superuser": false,
                "blocked_sessions_count": blocked.count, "directly_blocked_count": blocked.count, "blocked_pids": blocked, "blocking_started": since,
                "blocking_severity": severity, "held_lock_mode": "AccessExclusiveLock", "lock_target": "relation public.orders",
                "relation_name": "public.orders", "is_root_blocker": true, "in_deadlock_cycle": false,
                "recommended_action": "commit it or terminate pid \(pid)", "auto_kill_eligible": severity == "CRITICAL",
                "kill_threshold_seconds": 300, "query": "UPDATE orders SET x = 1",
                "hash_diff": hashDiff("\(severity)-\(blocked)"),
            ]
        }

        static func waitLock(pid: Int, start: String, waitStart: String, blockedBy: Int, mode: String = "AccessShareLock") -> [String: Any] {
            [
                "lock_activity": ["holder_kind": "session", "session_pid": pid, "session_start": start, "lock_type": "relation", "database_oid": 5,
                                  "lock_target_key": "relation/5/100", "lock_mode": mode] as [String: Any],
                "lock_type": "relation", "lock_mode": mode, "lock_granted": false, "database_name": "shop", "relation_name": "public.orders",
                "lock_target": "relation public.orders", "wait_start": waitStart, "lock_since": waitStart, "blocking_pid": blockedBy,
                "blocked_by_pids": [blockedBy], "session_pid": pid, "user_name": "app", "application_name": "web", "session_state": "active",
                "query": "SELECT 1", "hash_diff": hashDiff(String(format: "aa%04d", blockedBy)),
            ]
        }

        static func cycle(at: String, blockers: [[String: Any]] = [], locks: [[String: Any]] = [], sessions: [[String: Any]] = []) throws -> String {
            let doc: [String: Any] = [
                "system_identifier": sysid, "record_source": "test", "captured_at": at,
                "sessions": sessions + blockers.map { ["blocking_session": $0["blocking_session"]!, "database_name": "shop"] }
                    + locks.map { lock -> [String: Any] in
                        let key = lock["lock_activity"] as! [String: Any]
                        return ["blocking_session": ["session_kind": "session", "session_pid": key["session_pid"]!, "session_start": key["session_start"]!],
                                "database_name": "shop"]
                    },
                "blockers": blockers, "locks": locks,
                "summary": ["cluster_name": "fixture", "cycle_ms": 1.5, "backends": 10, "waiting_sessions": locks.count, "blockers": blockers.count,
                            "critical_blockers": 0, "locks_captured": locks.count, "server_version_num": 150018,
                            "hash_diff": hashDiff("\(locks.count)-\(blockers.count)")],
            ]
            return String(decoding: try JSONSerialization.data(withJSONObject: doc), as: UTF8.self)
        }

        static func record(_ conn: PostgresConnection, _ json: String) throws {
            _ = try conn.query("SELECT lock_monitoring.record_cycle($1::jsonb)", [json])
        }

        static func ago(_ seconds: Double, from now: Date) -> String { PostgresTimestamp.format(now.addingTimeInterval(-seconds)) }

        @Test func dashboardsShowCurrentRowsWorstFirstAndEndedRowsDisappear() async throws {
            try await LiveDatabase.withTemporaryDatabase { db in
                let conn = try LiveDatabase.connect(database: db)
                defer { conn.close() }
                try Migrator().apply(on: conn)
                let now = try conn.query("SELECT now() AS n")[0].decode("n", as: Date.self)
                let start = Self.ago(3600, from: now)
                // t-30: pid 10 blocks 11 (MEDIUM); pid 20 blocks 21, 22, 23 (HIGH).
                try Self.record(conn, Self.cycle(at: Self.ago(30, from: now),
                    blockers: [Self.blocker(pid: 10, start: start, severity: "MEDIUM", blocked: [11], since: Self.ago(40, from: now)),
                               Self.blocker(pid: 20, start: start, severity: "HIGH", blocked: [21, 22, 23], since: Self.ago(90, from: now))],
                    locks: [Self.waitLock(pid: 11, start: start, waitStart: Self.ago(40, from: now), blockedBy: 10)]))
                // t-20: same again (no change: no new rows); plus pid 30 CRITICAL blocking one.
                try Self.record(conn, Self.cycle(at: Self.ago(20, from: now),
                    blockers: [Self.blocker(pid: 10, start: start, severity: "MEDIUM", blocked: [11], since: Self.ago(40, from: now)),
                               Self.blocker(pid: 20, start: start, severity: "HIGH", blocked: [21, 22, 23], since: Self.ago(90, from: now)),
                               Self.blocker(pid: 30, start: start, severity: "CRITICAL", blocked: [31], since: Self.ago(400, from: now))],
                    locks: [Self.waitLock(pid: 11, start: start, waitStart: Self.ago(40, from: now), blockedBy: 10)]))
                // t-10: pid 10 stopped blocking (its waiter's lock is gone too).
                try Self.record(conn, Self.cycle(at: Self.ago(10, from: now),
                    blockers: [Self.blocker(pid: 20, start: start, severity: "HIGH", blocked: [21, 22, 23], since: Self.ago(90, from: now)),
                               Self.blocker(pid: 30, start: start, severity: "CRITICAL", blocked: [31], since: Self.ago(400, from: now))]))

                let rows = try conn.query("SELECT session_pid, blocking_severity, blocked_sessions_count, blocking_duration_seconds FROM lock_monitoring.blocking_sessions_dashboard")
                #expect(try rows.map { try $0.decode("session_pid", as: Int32.self) } == [30, 20], "CRITICAL first, ended blocker gone")
                #expect(try rows.map { try $0.decode("blocking_severity", as: String.self) } == ["CRITICAL", "HIGH"])
                #expect(try rows[1].decode("blocked_sessions_count", as: Int.self) == 3)
                let duration = try rows[0].decode("blocking_duration_seconds", as: Double.self)
                #expect(duration >= 400 && duration < 460, "live duration from blocking_started")

                // History: pid 10 has one row (not one per cycle), ended at t-10 with its final duration.
                let history = try conn.query("""
                    SELECT s.load_end_date IS NOT NULL AS ended, s.blocking_duration_seconds AS d
                    FROM lock_monitoring.blocking_session_s s JOIN lock_monitoring.blocking_session_h h USING (blocking_session_hk)
                    WHERE h.session_pid = 10
                    """)
                #expect(history.count == 1)
                #expect(try history[0].decode("ended", as: Bool.self))
                #expect(abs(try history[0].decode("d", as: Double.self) - 30) < 0.001)
                #expect(try conn.query("SELECT count(*) AS n FROM lock_monitoring.lock_activity_dashboard")[0].decode("n", as: Int.self) == 0)
                #expect(try conn.query("SELECT count(*) AS n FROM lock_monitoring.blocking_session_s")[0].decode("n", as: Int.self) == 3)

                // Replaying a cycle (a retried write) changes nothing.
                let before = try conn.query("SELECT count(*) AS n FROM lock_monitoring.blocking_session_s")[0].decode("n", as: Int.self)
                try Self.record(conn, Self.cycle(at: Self.ago(10, from: now),
                    blockers: [Self.blocker(pid: 20, start: start, severity: "HIGH", blocked: [21, 22, 23], since: Self.ago(90, from: now)),
                               Self.blocker(pid: 30, start: start, severity: "CRITICAL", blocked: [31], since: Self.ago(400, from: now))]))
                #expect(try conn.query("SELECT count(*) AS n FROM lock_monitoring.blocking_session_s")[0].decode("n", as: Int.self) == before)
            }
        }

        @Test func cleanupRemovesExactlyTheOldClosedRows() async throws {
            try await LiveDatabase.withTemporaryDatabase { db in
                let conn = try LiveDatabase.connect(database: db)
                defer { conn.close() }
                try Migrator().apply(on: conn)
                let now = try conn.query("SELECT now() AS n")[0].decode("n", as: Date.self)
                let day = 86_400.0
                let oldStart = Self.ago(50 * day, from: now)
                // Old blocker 1: seen 45 days ago, ended 44 days ago (closed, old → deleted).
                try Self.record(conn, Self.cycle(at: Self.ago(45 * day, from: now),
                    blockers: [Self.blocker(pid: 1, start: oldStart, severity: "LOW", blocked: [2], since: Self.ago(45 * day, from: now)),
                               Self.blocker(pid: 3, start: oldStart, severity: "LOW", blocked: [4], since: Self.ago(45 * day, from: now))]))
                // Blocker 3 is still current today (45 days old but current → kept).
                try Self.record(conn, Self.cycle(at: Self.ago(44 * day, from: now),
                    blockers: [Self.blocker(pid: 3, start: oldStart, severity: "LOW", blocked: [4], since: Self.ago(45 * day, from: now))]))
                // Blocker 5: closed only yesterday (recent → kept).
                try Self.record(conn, Self.cycle(at: Self.ago(2 * day, from: now),
                    blockers: [Self.blocker(pid: 3, start: oldStart, severity: "LOW", blocked: [4], since: Self.ago(45 * day, from: now)),
                               Self.blocker(pid: 5, start: oldStart, severity: "LOW", blocked: [6], since: Self.ago(2 * day, from: now))]))
                try Self.record(conn, Self.cycle(at: Self.ago(1 * day, from: now),
                    blockers: [Self.blocker(pid: 3, start: oldStart, severity: "LOW", blocked: [4], since: Self.ago(45 * day, from: now))]))

                // Alerts: one incident 45 days old (goes, with its delivery), one from yesterday (stays).
                try conn.executeScript("""
                    INSERT INTO lock_monitoring.alert_h (alert_hk, alert_id, cluster_hk, load_date, record_source)
                    SELECT lock_monitoring.hash_key(id), id, cluster_hk, now() - make_interval(days => d), 'test'
                    FROM lock_monitoring.monitored_cluster_h, (VALUES ('old', 45), ('new', 1)) v(id, d);
                    INSERT INTO lock_monitoring.alert_event_s (alert_hk, event_at, kind, load_date, record_source, severity, summary, payload)
                    SELECT alert_hk, load_date, 'raised', load_date, 'test', 'CRITICAL', 'x', '{}' FROM lock_monitoring.alert_h;
                    INSERT INTO lock_monitoring.alert_delivery_s (alert_hk, event_at, kind, sink, load_date, record_source, outcome, attempts, finished_at)
                    SELECT alert_hk, event_at, kind, 'mail', load_date, 'test', 'delivered', 1, event_at FROM lock_monitoring.alert_event_s;
                    """)
                let removed = Dictionary(uniqueKeysWithValues: try conn.query("SELECT table_name, rows_deleted FROM lock_monitoring.cleanup_old_data(30)").map {
                    (try $0.decode("table_name", as: String.self), try $0.decode("rows_deleted", as: Int64.self))
                })
                #expect(removed["blocking_session_s"] == 1, "only blocker 1's closed row")
                #expect(removed["blocking_session_h"] == 1, "and its hub, now unreferenced")
                #expect(removed["alert_event_s"] == 1 && removed["alert_delivery_s"] == 1 && removed["alert_h"] == 1, "\(removed)")
                #expect(try conn.query("SELECT alert_id FROM lock_monitoring.alert_h").map { try $0.decode("alert_id", as: String.self) } == ["new"])
                let left = try conn.query("""
                    SELECT h.session_pid, s.load_end_date IS NULL AS current FROM lock_monitoring.blocking_session_s s
                    JOIN lock_monitoring.blocking_session_h h USING (blocking_session_hk) ORDER BY 1
                    """).map { (try $0.decode("session_pid", as: Int32.self), try $0.decode("current", as: Bool.self)) }
                #expect(left.map(\.0) == [3, 5])
                #expect(left.map(\.1) == [true, false])
                #expect(throws: PostgresError.self) { try conn.query("SELECT * FROM lock_monitoring.cleanup_old_data(0)") }
            }
        }

        @Test func analyzeLockWaitsAggregatesAPeriod() async throws {
            try await LiveDatabase.withTemporaryDatabase { db in
                let conn = try LiveDatabase.connect(database: db)
                defer { conn.close() }
                try Migrator().apply(on: conn)
                let now = try conn.query("SELECT now() AS n")[0].decode("n", as: Date.self)
                let start = Self.ago(7200, from: now)
                // Three waits on public.orders (AccessShareLock) of 10, 20 and 30 s, all behind pid 9; ended.
                for (i, seconds) in [10.0, 20.0, 30.0].enumerated() {
                    let begin = 1000.0 + Double(i) * 100
                    let lock = Self.waitLock(pid: 100 + i, start: start, waitStart: Self.ago(begin, from: now), blockedBy: 9)
                    try Self.record(conn, Self.cycle(at: Self.ago(begin - 1, from: now), locks: [lock]))
                    try Self.record(conn, Self.cycle(at: Self.ago(begin - seconds, from: now)))
                }
                let result = try conn.query("SELECT * FROM lock_monitoring.analyze_lock_waits($1, $2)", [now.addingTimeInterval(-3600), now])
                #expect(result.count == 1)
                let row = try #require(result.first)
                #expect(try row.decode("lock_target", as: String.self) == "relation public.orders")
                #expect(try row.decode("wait_count", as: Int.self) == 3)
                #expect(abs(try row.decode("avg_wait_seconds", as: Double.self) - 20) < 0.01)
                #expect(abs(try row.decode("max_wait_seconds", as: Double.self) - 30) < 0.01)
                #expect(abs(try row.decode("p95_wait_seconds", as: Double.self) - 29) < 0.01)
                let dash = try conn.query("SELECT wait_count, top_blockers FROM lock_monitoring.lock_wait_analysis_dashboard")
                #expect(dash.count == 1)
                #expect(try dash[0].decode("top_blockers", as: [String].self) == ["pid 9"])
                // Same period again: no new satellite row.
                _ = try conn.query("SELECT * FROM lock_monitoring.analyze_lock_waits($1, $2)", [now.addingTimeInterval(-3600), now])
                #expect(try conn.query("SELECT count(*) AS n FROM lock_monitoring.lock_wait_analysis_s")[0].decode("n", as: Int.self) == 1)
            }
        }
    }
}
