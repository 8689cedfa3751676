import Foundation
import LockvaultCore
@testable import LockvaultEngine
import PostgresClient
import Testing

/// What `lockvault status` and fleet_dashboard show of a cluster's blockers by severity. They
/// are read from the cluster's current cycle summary (migration 025), so what a DBA relies on
/// is that the summary follows the blockers: a blocker whose severity changes, and nothing
/// else, is shown at its new severity after the next cycle, with no heartbeat in between (the
/// scenario's heartbeat is an hour). A summary written by a lockvault that does not count by
/// severity (before 025) still shows the counts, from the blocker rows.
extension LiveDatabaseSuite {
    @Suite struct FleetStatusLiveTests {
        /// Severity by blocked-session count only: one holder and one waiter is LOW; with
        /// `highAfterSeconds: 0` the same blocker is HIGH.
        static func policy(highAfterSeconds: Double) -> SeverityPolicy {
            var p = SeverityPolicy()
            p.mediumAfterSeconds = highAfterSeconds
            p.highAfterSeconds = highAfterSeconds
            p.criticalAfterSeconds = 7200
            p.criticalBlockedSessions = 1000
            p.highBlockedSessions = 1000
            p.idleInTransactionFactor = 1
            p.exclusiveLockEscalates = false
            return p
        }

        static func counts(_ row: FleetStatusRow?) -> [Int]? {
            row.map { [$0.critical_blockers, $0.high_blockers, $0.medium_blockers, $0.low_blockers] }
        }

        @Test func theSeverityCountsFollowABlockerThatGoesFromLowToHigh() async throws {
            try await EngineScenario.run(severity: Self.policy(highAfterSeconds: 3600)) { s in
                try s.admin.executeScript("CREATE TABLE t (id int); GRANT ALL ON t TO PUBLIC")
                let holder = try await s.session("lv-fleet-holder"), waiter = try await s.session("lv-fleet-waiter")
                try await holder.run("BEGIN", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
                _ = waiter.start("SELECT count(*) FROM t")
                try await s.waitForWaiters(1)

                try await s.cycle()
                var fleet = try FleetStatusRow.read(on: s.admin)
                #expect(fleet.count == 1)
                #expect(Self.counts(fleet.first) == [0, 0, 0, 1], "one LOW blocker: \(fleet)")
                #expect(fleet.first?.longest_wait_seconds != nil)
                let summaries = "lock_monitoring.monitor_cycle_s"
                let written = try s.rows("SELECT count(*) AS n FROM \(summaries)")[0].decode("n", as: Int.self)

                // The same blocker, the same waiter; only the rule now calls it HIGH.
                var config = s.configuration
                config.severity = Self.policy(highAfterSeconds: 0)
                await s.monitor.reconfigure(config)
                try await s.cycle()
                #expect(try s.rows("SELECT blocking_severity FROM lock_monitoring.blocking_sessions_dashboard")
                    .map { try $0.decode("blocking_severity", as: String.self) } == ["HIGH"])
                fleet = try FleetStatusRow.read(on: s.admin)
                #expect(Self.counts(fleet.first) == [0, 1, 0, 0], "the blocker is HIGH now: \(fleet)")
                #expect(try s.rows("SELECT count(*) AS n FROM \(summaries)")[0].decode("n", as: Int.self) == written + 1,
                        "a severity change writes a summary row")
                let view = try s.rows("SELECT high_blockers, low_blockers FROM lock_monitoring.fleet_dashboard")
                #expect(try view.map { [try $0.decode("high_blockers", as: Int.self), try $0.decode("low_blockers", as: Int.self)] } == [[1, 0]])

                // It ends: nobody blocks, nobody waits.
                try await holder.run("ROLLBACK")
                try await waitUntil("nobody waits for a lock in the test database") {
                    try s.rows("SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()")[0]
                        .decode("n", as: Int.self) == 0
                }
                try await s.cycle()
                fleet = try FleetStatusRow.read(on: s.admin)
                #expect(Self.counts(fleet.first) == [0, 0, 0, 0], "\(fleet)")
                #expect(fleet.first?.longest_wait_seconds == nil)
            }
        }

        @Test func aSummaryWithoutCountsBySeverityIsCountedFromTheBlockerRows() async throws {
            try await EngineScenario.run(severity: Self.policy(highAfterSeconds: 0)) { s in
                try s.admin.executeScript("CREATE TABLE t (id int); GRANT ALL ON t TO PUBLIC")
                let holder = try await s.session("lv-fleet-holder"), waiter = try await s.session("lv-fleet-waiter")
                try await holder.run("BEGIN", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
                _ = waiter.start("SELECT count(*) FROM t")
                try await s.waitForWaiters(1)
                let outcome = await s.monitor.runCycle(write: false)
                let snapshot = try #require(outcome.snapshot)
                let record = CycleRecord(
                    snapshot: snapshot, assessments: outcome.assessments, graph: WaitGraph(snapshot), deadlocks: [], decisions: [],
                    rulings: outcome.rulings, context: RecordContext(clusterName: "older", recordSource: "test", killThresholdSeconds: 0), heartbeatSeconds: 3600,
                    cycleMilliseconds: 1, gap: nil)
                // As a lockvault from before migration 025 sends it: no counts by severity.
                var document = try #require(try JSONSerialization.jsonObject(with: Data(try record.encoded().utf8)) as? [String: Any])
                var summary = try #require(document["summary"] as? [String: Any])
                for key in ["high_blockers", "medium_blockers", "low_blockers"] { summary[key] = nil }
                document["summary"] = summary
                let text = String(decoding: try JSONSerialization.data(withJSONObject: document), as: UTF8.self)
                _ = try s.admin.transaction { tx in try tx.query("SELECT lock_monitoring.record_cycle($1::jsonb)", [text]) }
                #expect(try s.rows("SELECT count(*) AS n FROM lock_monitoring.monitor_cycle_s WHERE load_end_date IS NULL AND high_blockers IS NULL")[0]
                    .decode("n", as: Int.self) == 1)

                let fleet = try FleetStatusRow.read(on: s.admin)
                #expect(fleet.count == 1 && fleet.first?.cluster_name == "older")
                #expect(Self.counts(fleet.first) == [0, 1, 0, 0], "counted from blocking_session_s: \(fleet)")
            }
        }
    }
}
