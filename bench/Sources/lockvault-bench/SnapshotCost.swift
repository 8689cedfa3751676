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
    /// Issue 16's worst case: 150 idle in transaction holding ACCESS SHARE on 20 tables each,
    /// 40 idle, one row blocker (idle in transaction after an UPDATE) with `waiters` waiters.
    var worstCase = false
    /// Also run the wiki and pg_activity-style self-joins (slow at the big scales).
    var selfJoins = true
    /// Scales with the same holders (only the waiters differ) share them: set up once, and already
    /// past the hold threshold when the next one starts.
    var holderShape: [Int] { [backends, locks, quiet ? 1 : 0, worstCase ? 1 : 0] }
    var description: String {
        if worstCase { return "worst case: \(backends) backends (\(backends * 3 / 4) idle in transaction × 20 ACCESS SHARE, \(backends - backends * 3 / 4 - 1) idle, 1 row blocker), \(waiters) waiters" }
        return quiet ? "\(backends) idle backends, no locks held, 0 waiters" : "\(backends) backends, \(locks) locks, \(waiters) waiters"
    }
}

/// Issue 16's references. A: the least any sampler must read; B: who blocks whom, the
/// server's way; L: reading pg_locks at all.
let refA = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
let refB = "SELECT pid, pg_blocking_pids(pid) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"

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
    let rounds = smoke ? 15 : 31   // 31 interleaved rounds per query and scale: the whole bench/run.sh stays under 20 minutes
    let db = "lv_bench"
    let tableCount = 1000

    let admin = try PostgresConnection(conninfo: "dbname=postgres", settings: SessionSettings(applicationName: "lv-bench", statementTimeoutMs: 0, lockTimeoutMs: 0))
    _ = try admin.execute("DROP DATABASE IF EXISTS \(db) WITH (FORCE)")
    _ = try admin.execute("CREATE DATABASE \(db)")
    admin.close()
    let benchSettings = SessionSettings(applicationName: "lv-bench", statementTimeoutMs: 0, lockTimeoutMs: 0, idleInTransactionSessionTimeoutMs: 0)
    let setup = try PostgresConnection(conninfo: "dbname=\(db)", settings: benchSettings)
    try setup.executeScript("DO $$ BEGIN FOR i IN 1..\(tableCount) LOOP EXECUTE format('CREATE TABLE t%s (id int)', i); END LOOP; END $$; CREATE TABLE hot (id int); CREATE TABLE hot_row (id int PRIMARY KEY, n int); INSERT INTO hot_row VALUES (1, 0);")

    let scales: [Scale] = smoke
        ? [Scale(backends: 50, locks: 0, waiters: 0, quiet: true), Scale(backends: 50, locks: 1000, waiters: 10, quiet: false),
           Scale(backends: 20, locks: 300, waiters: 3, quiet: false, worstCase: true, selfJoins: false)]
        : [Scale(backends: 200, locks: 0, waiters: 0, quiet: true),
           Scale(backends: 50, locks: 1000, waiters: 0, quiet: false),
           Scale(backends: 200, locks: 5000, waiters: 0, quiet: false),
           Scale(backends: 200, locks: 5000, waiters: 10, quiet: false),
           Scale(backends: 200, locks: 5000, waiters: 100, quiet: false),
           Scale(backends: 500, locks: 20000, waiters: 0, quiet: false, selfJoins: false),
           Scale(backends: 500, locks: 20000, waiters: 10, quiet: false),
           Scale(backends: 500, locks: 20000, waiters: 100, quiet: false, selfJoins: false),
           Scale(backends: 200, locks: 3000, waiters: 10, quiet: false, worstCase: true, selfJoins: false)]

    var report = "| scale | query | median ms | p99 ms | × floor (median) | rows / locks returned |\n|---|---|---:|---:|---:|---:|\n"
    var verdicts: [String] = []
    let monitor = try PostgresConnection(conninfo: "dbname=\(db)", settings: SessionSettings(applicationName: "lockvault", statementTimeoutMs: 0, lockTimeoutMs: 0))

    var holders: [PostgresConnection] = []
    for (n, scale) in scales.enumerated() {
        FileHandle.standardError.write(Data("scale: \(scale)\n".utf8))
        let newHolders = holders.isEmpty && scale.backends > 0
        let perBackend = scale.backends > 0 ? max(1, scale.locks / scale.backends) : 0
        for i in 0..<(newHolders ? scale.backends : 0) {
            let c = try PostgresConnection(conninfo: "dbname=\(db)", settings: benchSettings)
            if scale.worstCase {
                // 3/4 idle in transaction holding ACCESS SHARE on 20 tables each, the rest idle; one row blocker.
                if i < scale.backends * 3 / 4 {
                    try c.execute("BEGIN")
                    try c.execute("LOCK TABLE \((0..<20).map { "t\(((i * 20 + $0) % tableCount) + 1)" }.joined(separator: ", ")) IN ACCESS SHARE MODE")
                } else if i == scale.backends - 1 {
                    try c.execute("BEGIN")
                    try c.execute("UPDATE hot_row SET n = n + 1 WHERE id = 1")
                }
            } else if !scale.quiet {
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
            if !scale.worstCase {
                let h = try PostgresConnection(conninfo: "dbname=\(db)", settings: benchSettings)
                try h.execute("BEGIN")
                try h.execute("LOCK TABLE hot IN ACCESS EXCLUSIVE MODE")
                hotHolder = h
            }
            let waitSQL = scale.worstCase ? "UPDATE hot_row SET n = n + 1 WHERE id = 1" : "SELECT * FROM hot"
            for _ in 0..<scale.waiters {
                let s = PostgresSession(conninfo: "dbname=\(db)", settings: benchSettings)
                waiters.append(s)
                waiting.append(Task { _ = try? await s.withConnection { try $0.query(waitSQL) } })
            }
            while try monitor.query("SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'")[0].decode("n", as: Int.self) < scale.waiters {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        // Every transaction of the scale older than the 5 s hold threshold before `known` is read, like
        // a real long transaction: new holders, and the waiters and their holder (set up for every
        // scale). Otherwise they cross the threshold while the rounds run, and the "steady" cycle
        // reads them as newly long, with pg_locks.
        if !scale.quiet && (newHolders || scale.waiters > 0) { try await Task.sleep(for: .milliseconds(5100)) }

        let lockvaultSQL = SnapshotQuery.sql
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
        // The previous cycle's capture, as the reader passes it in a steady cycle ($5): after
        // everything above settled, so long transactions' state_change is older.
        let previousCapture = try monitor.query("SELECT now() AS t")[0].decode("t", as: Date.self)
        // What the reader passes as $6 once it has read the waiters (SamplerMemory.WaitKey).
        // Set-up only (not measured): each waiter's blockers and whether each of them waits too.
        let knownWaits = try monitor.query("""
            SELECT coalesce(json_agg(json_build_array(w.pid, w.backend_start, w.query_start, w.wait_event,
                       (SELECT coalesce(json_agg(json_build_array(x, EXISTS (SELECT 1 FROM pg_stat_activity b WHERE b.pid = x AND b.wait_event_type = 'Lock'))
                                                 ORDER BY x), '[]') FROM unnest(pg_blocking_pids(w.pid)) x))), '[]')::text AS k
            FROM pg_stat_activity w WHERE w.wait_event_type = 'Lock'
            """)[0].decode("k", as: String.self)
        // lockvault runs its statement prepared (planned once per connection), so measure it so.
        var queries: [(String, String, [(any PostgresEncodable)?])] = [
            ("L: count(*) FROM pg_locks (floor)", floorSQL, []),
            ("lockvault, steady cycle", lockvaultSQL, [1024, 5.0, false, known, previousCapture, knownWaits, "[]", 0.0, "{}"]),
            ("lockvault, lock-table cycle (1 a minute)", lockvaultSQL, [1024, 5.0, true, known, previousCapture, knownWaits, "[]", 0.0, "{}"]),
            ("lockvault, first cycle (reads everything that matters)", lockvaultSQL, [1024, 5.0, false, String?.none, Date?.none, String?.none, "[]", 0.0, "{}"]),
            ("A: count(*) of Lock waiters in pg_stat_activity", refA, []),
            ("B: pg_blocking_pids() of Lock waiters", refB, []),
            ("lockvault, new waits (waiters not known yet)", lockvaultSQL, [1024, 5.0, false, known, previousCapture, "[]", "[]", 0.0, "{}"]),
        ]
        if scale.selfJoins {
            queries += [("wiki self-join", wikiSQL, []), ("pg_activity-style", pgActivityStyleSQL, [])]
        }
        let prepared: Set<Int> = [1, 2, 3, 6]
        var times = Array(repeating: [Double](), count: queries.count)
        var rows = Array(repeating: 0, count: queries.count)
        var locksReturned = Array(repeating: 0, count: queries.count)
        var backendsReturned = Array(repeating: 0, count: queries.count)
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
                    backendsReturned[i] = try result[0].decode("backends", as: String?.self).map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [Any] }??.count ?? 0
                }
            }
        }
        let floorMedian = percentile(times[0], 0.5)
        for (i, q) in queries.enumerated() {
            let median = percentile(times[i], 0.5)
            let returned = prepared.contains(i) ? "\(backendsReturned[i]) backends, \(locksReturned[i]) locks" : "\(rows[i])"
            report += "| \(scale) | \(q.0) | \(String(format: "%.3f", median)) | \(String(format: "%.3f", percentile(times[i], 0.99))) | \(String(format: "%.2f", median / floorMedian)) | \(returned) |\n"
        }
        let steady = percentile(times[1], 0.5), refresh = percentile(times[2], 0.5), first = percentile(times[3], 0.5)
        let a = percentile(times[4], 0.5), b = percentile(times[5], 0.5), l = floorMedian, newWaits = percentile(times[6], 0.5)
        // Per cycle at 1 Hz: 59 steady cycles and one lock-table cycle a minute.
        let perCycle = (59 * steady + refresh) / 60
        func x(_ v: Double) -> String { String(format: v < 10 ? "%.2f" : "%.1f", v) }
        func verdict(_ ratio: Double, _ target: Double) -> String { ratio <= target ? "met" : "MISSED" }
        let targetScale = (scale.backends == 200 && scale.locks == 5000) || (scale.backends == 500 && scale.locks == 20000) || scale.quiet
        var line = "- \(scale): per cycle (59 steady + 1 lock-table cycle a minute) \(x(perCycle / a))× A, \(x(perCycle / l))× L"
        if scale.waiters == 0 {
            line += targetScale ? " (nobody waits, no transaction newly long: target ≤ 1.5× A: \(verdict(perCycle / a, 1.5)))" : ""
        } else {
            line += "; same waiters as last cycle \(x(steady / b))× B" + (targetScale ? " (target ≤ 1.5× B: \(verdict(steady / b, 1.5)))" : "")
            line += "; new waits \(x(newWaits / (b + l)))× (B + L)" + (targetScale ? " (target ≤ 1.3× (B + L): \(verdict(newWaits / (b + l), 1.3)))" : "")
        }
        line += "; first cycle \(x(first / l))× L."
        if scale.selfJoins {
            let wiki = percentile(times[7], 0.5), pga = percentile(times[8], 0.5)
            line += " \(x(wiki / perCycle))× faster than the wiki self-join, \(x(pga / perCycle))× faster than pg_activity-style."
        }
        verdicts.append(line)
        // Tear down: the waiters, and the holders unless the next scale has the same ones.
        if let h = hotHolder { try h.execute("ROLLBACK"); h.close() }
        if n + 1 == scales.count || scales[n + 1].holderShape != scale.holderShape || scale.worstCase {
            for c in holders { c.close() }   // first: in the worst case one of them is the row blocker
            holders = []
        }
        for t in waiting { await t.value }
        for s in waiters { await s.close() }
    }
    monitor.close()
    setup.close()

    return report + "\n" + verdicts.joined(separator: "\n")
}
