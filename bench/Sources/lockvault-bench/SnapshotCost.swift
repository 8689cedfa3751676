// Snapshot cost: lockvault's per-cycle snapshot statement against reference queries, side by
// side in the same session (this machine is noisy: only same-run ratios mean anything).
import Foundation
import LockvaultEngine
import PostgresClient

struct Scale: CustomStringConvertible {
    var backends: Int
    var locks: Int
    var waiters: Int
    /// Holders idle outside a transaction: nobody waits, nothing held long.
    var quiet: Bool
    var description: String { quiet ? "\(backends) idle backends, no locks held, 0 waiters" : "\(backends) backends, \(locks) locks, \(waiters) waiters" }
}

/// The floor: what merely reading pg_locks costs.
let floorSQL = "SELECT count(*) FROM pg_locks"

/// The classic self-join from the PostgreSQL wiki's "Lock Monitoring" page, in our own words:
/// every waiting lock joined to every other backend's lock on the same target.
let wikiSQL = """
    SELECT blocked.pid AS blocked_pid, blocked_act.usename AS blocked_user, blocking.pid AS blocking_pid,
           blocking_act.usename AS blocking_user, blocked_act.query AS blocked_statement, blocking_act.query AS blocking_statement
    FROM pg_catalog.pg_locks blocked
    JOIN pg_catalog.pg_stat_activity blocked_act ON blocked_act.pid = blocked.pid
    JOIN pg_catalog.pg_locks blocking ON blocking.locktype = blocked.locktype
         AND blocking.database IS NOT DISTINCT FROM blocked.database
         AND blocking.relation IS NOT DISTINCT FROM blocked.relation
         AND blocking.page IS NOT DISTINCT FROM blocked.page
         AND blocking.tuple IS NOT DISTINCT FROM blocked.tuple
         AND blocking.virtualxid IS NOT DISTINCT FROM blocked.virtualxid
         AND blocking.transactionid IS NOT DISTINCT FROM blocked.transactionid
         AND blocking.classid IS NOT DISTINCT FROM blocked.classid
         AND blocking.objid IS NOT DISTINCT FROM blocked.objid
         AND blocking.objsubid IS NOT DISTINCT FROM blocked.objsubid
         AND blocking.pid <> blocked.pid
    JOIN pg_catalog.pg_stat_activity blocking_act ON blocking_act.pid = blocking.pid
    WHERE NOT blocked.granted
    """

/// The approach pg_activity takes (reconstructed, not copied): a UNION ALL of three pg_locks
/// self-joins — on transactionid, virtualxid and relation — of granted (blocking) against
/// waiting locks, each joined to pg_stat_activity, then grouped.
let pgActivityStyleSQL = """
    SELECT pid, application_name, datname, usename, relation, mode, locktype, duration, state, query
    FROM (
        SELECT b.pid, a.application_name, a.datname, a.usename, b.relation::regclass::text AS relation, b.mode, b.locktype,
               extract(epoch FROM now() - a.query_start) AS duration, a.state, a.query
        FROM pg_locks b JOIN pg_locks w ON b.transactionid = w.transactionid AND b.locktype = w.locktype
        JOIN pg_stat_activity a ON a.pid = b.pid WHERE b.granted AND NOT w.granted
        UNION ALL
        SELECT b.pid, a.application_name, a.datname, a.usename, b.relation::regclass::text, b.mode, b.locktype,
               extract(epoch FROM now() - a.query_start), a.state, a.query
        FROM pg_locks b JOIN pg_locks w ON b.virtualxid = w.virtualxid AND b.locktype = w.locktype
        JOIN pg_stat_activity a ON a.pid = b.pid WHERE b.granted AND NOT w.granted
        UNION ALL
        SELECT b.pid, a.application_name, a.datname, a.usename, b.relation::regclass::text, b.mode, b.locktype,
               extract(epoch FROM now() - a.query_start), a.state, a.query
        FROM pg_locks b JOIN pg_locks w ON b.database = w.database AND b.relation = w.relation AND b.locktype = w.locktype
        JOIN pg_stat_activity a ON a.pid = b.pid WHERE b.granted AND NOT w.granted AND w.relation IS NOT NULL
    ) sq
    GROUP BY pid, application_name, datname, usename, relation, mode, locktype, duration, state, query
    ORDER BY duration DESC
    """


/// Runs every scale and returns the markdown table and verdict lines.
func snapshotCost(smoke: Bool) async throws -> String {
    let rounds = smoke ? 15 : 121
    let db = "lv_bench"
    let tableCount = 1000

    let admin = try PostgresConnection(conninfo: "dbname=postgres", settings: SessionSettings(applicationName: "lv-bench", statementTimeoutMs: 0, lockTimeoutMs: 0))
    _ = try admin.execute("DROP DATABASE IF EXISTS \(db) WITH (FORCE)")
    _ = try admin.execute("CREATE DATABASE \(db)")
    admin.close()
    let benchSettings = SessionSettings(applicationName: "lv-bench", statementTimeoutMs: 0, lockTimeoutMs: 0, idleInTransactionSessionTimeoutMs: 0)
    let setup = try PostgresConnection(conninfo: "dbname=\(db)", settings: benchSettings)
    try setup.executeScript("DO $$ BEGIN FOR i IN 1..\(tableCount) LOOP EXECUTE format('CREATE TABLE t%s (id int)', i); END LOOP; END $$; CREATE TABLE hot (id int);")

    let scales: [Scale] = smoke
        ? [Scale(backends: 50, locks: 0, waiters: 0, quiet: true), Scale(backends: 50, locks: 1000, waiters: 10, quiet: false)]
        : [Scale(backends: 200, locks: 0, waiters: 0, quiet: true),
           Scale(backends: 50, locks: 1000, waiters: 0, quiet: false),
           Scale(backends: 200, locks: 5000, waiters: 0, quiet: false),
           Scale(backends: 200, locks: 5000, waiters: 10, quiet: false),
           Scale(backends: 200, locks: 5000, waiters: 100, quiet: false),
           Scale(backends: 500, locks: 20000, waiters: 10, quiet: false)]

    var report = "| scale | query | median ms | p99 ms | × floor (median) | rows / locks returned |\n|---|---|---:|---:|---:|---:|\n"
    var verdicts: [String] = []
    let monitor = try PostgresConnection(conninfo: "dbname=\(db)", settings: SessionSettings(applicationName: "lockvault", statementTimeoutMs: 0, lockTimeoutMs: 0))

    for scale in scales {
        FileHandle.standardError.write(Data("scale: \(scale)\n".utf8))
        var holders: [PostgresConnection] = []
        let perBackend = scale.backends > 0 ? max(1, scale.locks / scale.backends) : 0
        for i in 0..<scale.backends {
            let c = try PostgresConnection(conninfo: "dbname=\(db)", settings: benchSettings)
            if !scale.quiet {
                try c.execute("BEGIN")
                let tables = (0..<perBackend).map { "t\(((i * perBackend + $0) % tableCount) + 1)" }.joined(separator: ", ")
                try c.execute("LOCK TABLE \(tables) IN ACCESS SHARE MODE")
            }
            holders.append(c)
        }
        var waiters: [PostgresSession] = []
        var waiting: [Task<Void, Never>] = []
        var hotHolder: PostgresConnection?
        if scale.waiters > 0 {
            let h = try PostgresConnection(conninfo: "dbname=\(db)", settings: benchSettings)
            try h.execute("BEGIN")
            try h.execute("LOCK TABLE hot IN ACCESS EXCLUSIVE MODE")
            hotHolder = h
            for _ in 0..<scale.waiters {
                let s = PostgresSession(conninfo: "dbname=\(db)", settings: benchSettings)
                waiters.append(s)
                waiting.append(Task { _ = try? await s.withConnection { try $0.query("SELECT * FROM hot") } })
            }
            while try monitor.query("SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'")[0].decode("n", as: Int.self) < scale.waiters {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        if !scale.quiet { try await Task.sleep(for: .milliseconds(5100)) }   // older than the 5 s hold threshold, like a real long transaction

        let lockvaultSQL = SnapshotQuery.sql(serverVersion: monitor.serverVersion)
        // What SnapshotReader passes as $4 in a steady cycle: every long transaction, already read,
        // with the fingerprint of its locks.
        let known = try monitor.query("""
            SELECT coalesce(json_agg(json_build_array(a.pid, a.xact_start, f.fp)), '[]')::text AS k
            FROM pg_stat_activity a
            LEFT JOIN (SELECT pid, \(SnapshotQuery.fingerprint) AS fp
                       FROM (SELECT l.pid, l.locktype, l.mode, l.relation::int8 AS relation, l.objid::int8 AS objid, l.page, l.tuple FROM pg_locks l) s
                       GROUP BY pid) f ON f.pid = a.pid
            WHERE a.xact_start < now() - interval '5 seconds'
            """)[0].decode("k", as: String.self)
        // lockvault runs its statement prepared (planned once per connection), so measure it so.
        let queries: [(String, String, [(any PostgresEncodable)?])] = [
            ("floor: count(*) FROM pg_locks", floorSQL, []),
            ("lockvault, steady cycle", lockvaultSQL, [1024, 5.0, false, known]),
            ("lockvault, lock-table cycle (1 a minute)", lockvaultSQL, [1024, 5.0, true, known]),
            ("lockvault before (all long locks every cycle)", lockvaultSQL, [1024, 5.0, false, String?.none]),
            ("wiki self-join", wikiSQL, []),
            ("pg_activity-style", pgActivityStyleSQL, []),
        ]
        let prepared: Set<Int> = [1, 2, 3]
        var times = Array(repeating: [Double](), count: queries.count)
        var rows = Array(repeating: 0, count: queries.count)
        var locksReturned = Array(repeating: 0, count: queries.count)
        let clock = ContinuousClock()
        for q in queries { _ = try monitor.query(q.1, q.2) }   // warm up
        for _ in 0..<6 { _ = try monitor.queryPrepared("lockvault_snapshot", lockvaultSQL, queries[1].2) }   // past the 5 custom plans
        for _ in 0..<rounds {
            for i in queries.indices.shuffled() {
                let start = clock.now
                let result = prepared.contains(i) ? try monitor.queryPrepared("lockvault_snapshot", queries[i].1, queries[i].2) : try monitor.query(queries[i].1, queries[i].2)
                times[i].append(ms(clock.now - start))
                rows[i] = result.count
                if prepared.contains(i) {
                    locksReturned[i] = try result[0].decode("locks", as: String?.self).map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [Any] }??.count ?? 0
                }
            }
        }
        let floorMedian = percentile(times[0], 0.5)
        for (i, q) in queries.enumerated() {
            let median = percentile(times[i], 0.5)
            let returned = prepared.contains(i) ? "\(locksReturned[i]) locks" : "\(rows[i])"
            report += "| \(scale) | \(q.0) | \(String(format: "%.3f", median)) | \(String(format: "%.3f", percentile(times[i], 0.99))) | \(String(format: "%.2f", median / floorMedian)) | \(returned) |\n"
        }
        let steady = percentile(times[1], 0.5), refresh = percentile(times[2], 0.5), before = percentile(times[3], 0.5)
        let wiki = percentile(times[4], 0.5), pga = percentile(times[5], 0.5)
        // Per cycle at 1 Hz: 59 steady cycles and one refresh a minute.
        let perCycle = (59 * steady + refresh) / 60
        func x(_ v: Double) -> String { String(format: v < 10 ? "%.2f" : "%.1f", v) }
        if !scale.quiet {
            var line = "- \(scale): per cycle (59 steady + 1 lock-table cycle a minute) \(x(perCycle / floorMedian))× floor"
            if scale.backends == 200 && scale.locks == 5000 {
                line += " (target ≤ 1.5×: \(perCycle / floorMedian <= 1.5 ? "met" : "MISSED"))"
                line += "; \(x(wiki / perCycle))× faster than the wiki self-join (target ≥ 5×: \(wiki / perCycle >= 5 ? "met" : "MISSED"))"
            } else {
                line += "; \(x(wiki / perCycle))× faster than the wiki self-join"
            }
            line += ", \(x(pga / perCycle))× faster than pg_activity-style. Before (every long transaction's locks every cycle): \(x(before / floorMedian))× floor, \(x(wiki / before))× faster than the wiki self-join."
            verdicts.append(line)
        } else {
            verdicts.append("- \(scale): lockvault \(x(steady / floorMedian))× floor — pg_locks is not read at all when nobody waits and no transaction is older than the hold threshold; what it pays for is pg_stat_activity, pg_prepared_xacts and pg_stat_database.")
        }
        // Tear down.
        if let h = hotHolder { try h.execute("ROLLBACK"); h.close() }
        for t in waiting { await t.value }
        for s in waiters { await s.close() }
        for c in holders { c.close() }
    }
    monitor.close()
    setup.close()

    return report + "\n" + verdicts.joined(separator: "\n")
}
