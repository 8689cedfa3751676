import LockvaultCore
public import PostgresClient

/// The vault's retention as the daemon runs it (`schedule.cleanup_interval_seconds`): what
/// `cleanup_old_data(days)` does in one transaction, in several: `retention_drop(days, table)`
/// for each partitioned table, then `retention_drop(days)` for the rest, then
/// `retention_sweep` batches until no retired key is left, then, when anything was removed, a
/// VACUUM of each table it may have DELETEd from.
///
/// Why batches: proving a hub unreferenced probes every daily partition, and the sweep holds
/// the hub lock while it decides, so every writer of the fleet waits for it. In one
/// transaction they waited for a whole day's hubs (seconds at the fleet bench's volume, more
/// in a real fleet); batch by batch they wait for one.
///
/// Why the VACUUM: the daily partitions go whole, which leaves nothing behind, but the hubs and
/// links no row refers to any more and the default partitions' old rows go by DELETE, and those
/// dead tuples stayed until autovacuum, which on an insert-only hub table came weeks later.
/// VACUUM can't run inside a function (nor any transaction), so it runs here, one statement a
/// table, as the SQL lists them (`retention_vacuum_statements()`, which also decides which
/// tables this role may vacuum).
public struct RetentionRun: Sendable {
    /// Rows removed, summed over every table (`cleanup_old_data`'s rows_deleted).
    public var rowsRemoved: Int64
    public var partitionsDropped: Int
    /// Sweep batches run (each a transaction holding the hub lock).
    public var sweepBatches: Int
    /// Tables vacuumed after the run.
    public var vacuumed: [String]
    /// Tables not vacuumed: this role may not (PostgreSQL 14-16 when the daemon is not the
    /// owner), or the VACUUM failed (its lock wait ran past lock_timeout). Autovacuum reclaims
    /// them (migration 028 lowers the hubs' and links' thresholds).
    public var notVacuumed: [String]
    /// How long each part took, in milliseconds: the drop (writers wait for its table locks),
    /// all sweep batches, the longest batch (writers wait for one), the VACUUMs.
    public var dropMilliseconds = 0.0
    public var sweepMilliseconds = 0.0
    public var longestBatchMilliseconds = 0.0
    public var vacuumMilliseconds = 0.0

    /// Keys a sweep batch takes: writers wait for one batch (about 0.3 ms a key at the fleet
    /// bench's volume).
    public static let sweepBatchSize = 500

    /// Runs retention for `days` on `conn`, which must not be inside a transaction: each part
    /// commits on its own.
    ///
    /// `statementTimeoutMs`, when given, is the statement_timeout of every statement of the run
    /// (0 = none), and the session's own is back when it returns or throws. Why: the daemon's
    /// vault session has the sampling timeout (5 s by default), made for a cycle's write; a
    /// day of a real fleet's history takes longer to drop (every partition's kept rows and
    /// retired keys are read), and a drop cancelled every run would leave the history growing.
    public static func run(days: Int, on conn: PostgresConnection, sweepBatchSize: Int = sweepBatchSize,
                           statementTimeoutMs: Int? = nil) throws -> RetentionRun {
        guard let statementTimeoutMs else { return try runParts(days: days, on: conn, sweepBatchSize: sweepBatchSize) }
        let session: String = try conn.query("SELECT current_setting('statement_timeout') AS t")[0].decode("t")
        _ = try conn.query("SELECT set_config('statement_timeout', $1, false)", [String(statementTimeoutMs)])
        defer { _ = try? conn.query("SELECT set_config('statement_timeout', $1, false)", [session]) }
        return try runParts(days: days, on: conn, sweepBatchSize: sweepBatchSize)
    }

    private static func runParts(days: Int, on conn: PostgresConnection, sweepBatchSize: Int) throws -> RetentionRun {
        let clock = ContinuousClock()
        func milliseconds(since start: ContinuousClock.Instant) -> Double { (clock.now - start).milliseconds }
        var start = clock.now
        var run = RetentionRun(rowsRemoved: 0, partitionsDropped: 0, sweepBatches: 0, vacuumed: [], notVacuumed: [])
        // One table's days a transaction, then the rest (nil): holding one table's locks at a
        // time, the drop never waits for a dashboard query that waits for it (retention_drop's comment).
        let tables: [String?] = try conn.query("SELECT table_name FROM lock_monitoring.history_partitioning ORDER BY 1")
            .map { try $0.decode("table_name", as: String.self) } + [nil]
        for table in tables {
            let dropped = try conn.query("""
                SELECT coalesce(sum(rows_deleted), 0)::int8 AS rows, coalesce(sum(partitions_dropped), 0)::int4 AS partitions
                FROM lock_monitoring.retention_drop($1, $2)
                """, [days, table])[0]
            run.rowsRemoved += try dropped.decode("rows", as: Int64.self)
            run.partitionsDropped += try dropped.decode("partitions", as: Int.self)
        }
        run.dropMilliseconds = milliseconds(since: start)
        // Also what an earlier run, stopped midway, left to sweep.
        while true {
            let batchStart = clock.now
            let batch = try conn.query("""
                SELECT coalesce(sum(rows_deleted) FILTER (WHERE table_name <> 'retention_retired_key'), 0)::int8 AS removed,
                       coalesce(sum(rows_deleted) FILTER (WHERE table_name = 'retention_retired_key'), 0)::int8 AS taken
                FROM lock_monitoring.retention_sweep($1)
                """, [sweepBatchSize])[0]
            let taken: Int64 = try batch.decode("taken")
            if taken == 0 { break }
            let took = milliseconds(since: batchStart)
            run.sweepMilliseconds += took
            run.longestBatchMilliseconds = max(run.longestBatchMilliseconds, took)
            run.sweepBatches += 1
            run.rowsRemoved += try batch.decode("removed", as: Int64.self)
        }
        guard run.rowsRemoved > 0 else { return run }
        // The run's DELETEs counted as dead tuples reach the shared statistics first (PostgreSQL
        // 15+ holds them back up to a second); counted after the VACUUM, they would tell
        // autovacuum of dead tuples that are gone. PostgreSQL 14 has no call for it: a backend
        // sends its counts when it goes idle, at most every 500 ms (PGSTAT_STAT_INTERVAL), so a
        // statement that outlasts that interval sends them when it ends, before the VACUUM's own.
        start = clock.now
        if conn.capabilities.has(.statForceNextFlush) {
            _ = try conn.query("SELECT pg_stat_force_next_flush()")
        } else {
            _ = try conn.query("SELECT pg_sleep(0.6)")
        }
        for table in try conn.query("SELECT table_name, statement FROM lock_monitoring.retention_vacuum_statements()") {
            let name: String = try table.decode("table_name")
            guard let statement: String = try table.decode("statement") else {
                run.notVacuumed.append(name)
                continue
            }
            do {
                // Waits at most the session's lock_timeout for another VACUUM, an ANALYZE or DDL.
                try conn.execute(statement)
                run.vacuumed.append(name)
            } catch {
                run.notVacuumed.append(name)
            }
        }
        run.vacuumMilliseconds = milliseconds(since: start)
        return run
    }
}
