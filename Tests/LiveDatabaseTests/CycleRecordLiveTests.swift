import Foundation
@testable import LockvaultCore
@testable import LockvaultEngine
import PostgresClient
import Testing

/// The cycle document's contract: every key of every row is a column of the table that row
/// fills (record_cycle maps them with jsonb_populate_record, which silently ignores a key that
/// names no column), and every hub reference is that hub's business-key columns.
extension LiveDatabaseSuite {
    @Suite struct CycleRecordLiveTests {
        /// family → the table its rows fill, and its hub references (key → hub table).
        static let families: [(family: String, table: String, references: [String: String])] = [
            ("sessions", "blocking_session_h", ["blocking_session": "blocking_session_h"]),
            ("locks", "lock_activity_s", ["lock_activity": "lock_activity_h"]),
            ("waits", "lock_blocking_l", ["lock_activity": "lock_activity_h", "blocked_session": "blocking_session_h", "blocking_session": "blocking_session_h"]),
            ("blockers", "blocking_session_s", ["blocking_session": "blocking_session_h"]),
            ("deadlock_counters", "deadlock_counter_s", [:]),
            ("deadlocks", "deadlock_event_s", ["deadlock_event": "deadlock_event_h"]),
            ("deadlock_participants", "deadlock_involvement_s", ["deadlock_event": "deadlock_event_h", "blocking_session": "blocking_session_h"]),
            ("decisions", "resolve_decision_s", ["blocking_session": "blocking_session_h"]),
            ("summary", "monitor_cycle_s", [:]),
            ("gap", "monitor_gap_s", [:]),
        ]

        @Test func everyKeyTheWriterSendsIsAColumnOfTheTableItFills() async throws {
            var resolve = ResolvePolicy()
            resolve.enabled = true
            resolve.dryRun = true
            resolve.killThresholdSeconds = 0
            let fast = SeverityPolicy(mediumAfterSeconds: 0, highAfterSeconds: 0.001, criticalAfterSeconds: 0.002)
            try await EngineScenario.run(severity: fast, resolve: resolve) { s in
                try s.admin.executeScript("CREATE TABLE t (id int); CREATE TABLE u (id int); GRANT ALL ON t, u TO PUBLIC")
                let holder = try await s.session("lv-holder"), waiter = try await s.session("lv-waiter")
                let preparer = try await s.session("lv-preparer"), waiter2 = try await s.session("lv-waiter2")
                let gid = "lv-record-\(s.database)"
                try await holder.run("BEGIN", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
                let w1 = waiter.start("SELECT count(*) FROM t")
                try await preparer.run("BEGIN", "LOCK TABLE u IN ACCESS EXCLUSIVE MODE", "PREPARE TRANSACTION '\(gid)'")
                let w2 = waiter2.start("SELECT count(*) FROM u")
                defer { _ = try? s.admin.execute("ROLLBACK PREPARED '\(gid)'") }
                try await s.waitForWaiters(2)

                let outcome = await s.monitor.runCycle(write: false)
                let snapshot = try #require(outcome.snapshot)
                // A deadlock and a gap, so those families have rows too.
                let deadlock = DeadlockEvent(eventKey: "k1", database: s.database, detectedAt: snapshot.capturedAt, sources: [.graph, .server_log],
                                             participants: [DeadlockParticipant(pid: holder.pid, waitsFor: "ShareLock on transaction 1", blockedBy: waiter.pid, query: "q")],
                                             victimPid: holder.pid, details: "Process …")
                let record = CycleRecord(
                    snapshot: snapshot, assessments: outcome.assessments, graph: WaitGraph(snapshot), deadlocks: [deadlock],
                    decisions: outcome.decisions.map { $0.record(decidedBy: "test", at: snapshot.capturedAt) },
                    rulings: outcome.rulings, context: RecordContext(clusterName: "test", recordSource: "test", killThresholdSeconds: 0), heartbeatSeconds: 60,
                    cycleMilliseconds: 1, gap: ObservationGap(start: snapshot.capturedAt.addingTimeInterval(-10), end: snapshot.capturedAt, reason: "test"))
                let document = try #require(try JSONSerialization.jsonObject(with: Data(try record.encoded().utf8)) as? [String: Any])

                func columns(_ table: String) throws -> Set<String> {
                    Set(try s.rows("SELECT column_name FROM information_schema.columns WHERE table_schema = 'lock_monitoring' AND table_name = $1", [table])
                        .map { try $0.decode("column_name", as: String.self) })
                }
                for (family, table, references) in Self.families {
                    let rows: [[String: Any]] = (document[family] as? [[String: Any]]) ?? (document[family] as? [String: Any]).map { [$0] } ?? []
                    #expect(!rows.isEmpty, "\(family): no rows to check")
                    // The sessions' database_name is their hub's tenant (tenant_hk), not a column.
                    let allowed = try columns(table).union(family == "sessions" ? ["database_name"] : [])
                    for row in rows {
                        let stray = Set(row.keys).subtracting(allowed).subtracting(references.keys)
                        #expect(stray.isEmpty, "\(family): keys that name no column of \(table): \(stray.sorted())")
                        for (key, hub) in references {
                            let reference = try #require(row[key] as? [String: Any], "\(family).\(key)")
                            let strayKey = Set(reference.keys).subtracting(try columns(hub))
                            #expect(strayKey.isEmpty, "\(family).\(key): keys that name no column of \(hub): \(strayKey.sorted())")
                        }
                    }
                }
                #expect((document["blockers"] as? [Any])?.count == 2 && (document["decisions"] as? [Any])?.count == 2)

                // And the vault takes it: one round trip writes every family.
                _ = try s.admin.transaction { tx in try tx.query("SELECT lock_monitoring.record_cycle($1::jsonb)", [try record.encoded()]) }
                for table in ["blocking_session_s", "lock_activity_s", "lock_blocking_l", "deadlock_event_s", "deadlock_involvement_s", "resolve_decision_s",
                              "monitor_cycle_s", "monitor_gap_s"] {
                    #expect(try s.rows("SELECT count(*) AS n FROM lock_monitoring.\(table)")[0].decode("n", as: Int.self) > 0, "\(table)")
                }
                try VaultConsistency.expectConsistent(s.admin)
                try await holder.run("ROLLBACK")
                _ = await w1.value
                try s.admin.execute("ROLLBACK PREPARED '\(gid)'")
                _ = await w2.value
            }
        }
    }
}
