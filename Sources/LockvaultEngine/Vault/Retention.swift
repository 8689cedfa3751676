public import PostgresClient

/// The vault's retention as the daemon runs it (`schedule.cleanup_interval_seconds`):
/// `cleanup_old_data(days)`, then, when that removed anything, a VACUUM of each table it may
/// have DELETEd from.
///
/// Why the VACUUM: the function drops whole daily partitions, which leaves nothing behind, but
/// the hubs and links no row refers to any more and the default partitions' old rows go by
/// DELETE, and those dead tuples stayed until autovacuum, which on an insert-only hub table
/// came weeks later. VACUUM can't run inside the function (nor any transaction), so it runs
/// here, one statement a table, as the SQL lists them (`retention_vacuum_statements()`, which
/// also decides which tables this role may vacuum).
public struct RetentionRun: Sendable, Equatable {
    /// Rows removed, summed over every table (`cleanup_old_data`'s rows_deleted).
    public var rowsRemoved: Int64
    public var partitionsDropped: Int
    /// Tables vacuumed after the run.
    public var vacuumed: [String]
    /// Tables not vacuumed: this role may not (PostgreSQL 15/16 when the daemon is not the
    /// owner), or the VACUUM failed (its lock wait ran past lock_timeout). Autovacuum reclaims
    /// them (migration 028 lowers the hubs' and links' thresholds).
    public var notVacuumed: [String]

    /// Runs retention for `days` on `conn`, which must not be inside a transaction.
    public static func run(days: Int, on conn: PostgresConnection) throws -> RetentionRun {
        let removed = try conn.query("""
            SELECT coalesce(sum(rows_deleted), 0)::int8 AS rows, coalesce(sum(partitions_dropped), 0)::int4 AS partitions
            FROM lock_monitoring.cleanup_old_data($1)
            """, [days])[0]
        var run = RetentionRun(rowsRemoved: try removed.decode("rows"), partitionsDropped: try removed.decode("partitions"),
                               vacuumed: [], notVacuumed: [])
        guard run.rowsRemoved > 0 else { return run }
        // The run's DELETEs counted as dead tuples reach the shared statistics first (PostgreSQL
        // 15+ holds them back up to a second); counted after the VACUUM, they would tell
        // autovacuum of dead tuples that are gone.
        if conn.serverVersion >= 150000 { _ = try conn.query("SELECT pg_stat_force_next_flush()") }
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
        return run
    }
}
