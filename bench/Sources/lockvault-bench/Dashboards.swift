// Dashboard queries over a vault filled with synthetic history (bench/history.sql): each
// dashboard read whole, as a DBA's `SELECT * FROM …` would, its first 50 rows, as a paging
// client would, and its last 24 hours. Interleaved in shuffled order; a fresh connection plans
// nothing twice.
import Foundation
import PostgresClient

/// Up to `rounds` rounds, but stops after `budgetSeconds` (at least 11 rounds): an unbounded
/// dashboard over a long history can take a second a read.
func dashboardQueries(vaultDB: String, rounds: Int, budgetSeconds: Double = 30) throws -> String {
    let conn = try PostgresConnection(conninfo: "dbname=\(vaultDB)", settings: SessionSettings(applicationName: "lv-bench-dashboards", statementTimeoutMs: 0, lockTimeoutMs: 0))
    defer { conn.close() }
    // Each dashboard with the column its 24-hour window filters on (the current-state ones:
    // when the row was recorded).
    let views = [("blocking_sessions_dashboard", "recorded_at"), ("lock_activity_dashboard", "recorded_at"),
                 ("lock_wait_analysis_dashboard", "period_start"), ("deadlock_events_dashboard", "detected_at"),
                 ("alerts_dashboard", "event_at")]
    // (label, SQL, target ms): each query's p99 target.
    let queries: [(String, String, Double)] = views.flatMap { v, column in
        [("`SELECT * FROM \(v)`", "SELECT * FROM lock_monitoring.\(v)", v == "deadlock_events_dashboard" ? 200 : 50),
         ("`… LIMIT 50`", "SELECT * FROM lock_monitoring.\(v) LIMIT 50", 10),
         ("`… WHERE \(column) >= now() - '24 hours'`", "SELECT * FROM lock_monitoring.\(v) WHERE \(column) >= now() - interval '24 hours'", 50)]
    }
    var times = Array(repeating: [Double](), count: queries.count)
    var rows = Array(repeating: 0, count: queries.count)
    for q in queries { _ = try conn.query(q.1) }   // warm the cache: a dashboard is read repeatedly
    let clock = ContinuousClock()
    let began = clock.now
    var done = 0
    while done < rounds && (done < 11 || ms(clock.now - began) < budgetSeconds * 1000) {
        done += 1
        for i in queries.indices.shuffled() {
            let start = clock.now
            rows[i] = try conn.query(queries[i].1).count
            times[i].append(ms(clock.now - start))
        }
    }
    var out = "| query | rows | median ms | p99 ms | target (p99) | |\n|---|---:|---:|---:|---:|---|\n"
    var missed: [String] = []
    for (i, q) in queries.enumerated() {
        let median = percentile(times[i], 0.5), p99 = percentile(times[i], 0.99)
        let ok = p99 < q.2
        if !ok { missed.append("`\(q.1)` (\(String(format: "%.1f", p99)) ms, target < \(Int(q.2)) ms)") }
        out += "| \(q.0) | \(rows[i]) | \(String(format: "%.2f", median)) | \(String(format: "%.2f", p99)) | < \(Int(q.2)) ms | \(ok ? "met" : "MISSED") |\n"
    }
    out += "\n\(done) rounds. " + (missed.isEmpty ? "Every dashboard query meets its target at p99." : "Over target at p99: " + missed.joined(separator: ", ") + ".")
    return out
}
