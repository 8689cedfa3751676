import Foundation

/// The one statement a sampling cycle sends to the monitored cluster.
///
/// Why one statement: `pg_stat_activity`, `pg_locks` and `pg_blocking_pids()` are each read at
/// a slightly different instant; one round trip keeps them as close together as the server
/// allows and costs one network hop.
///
/// Why it is shaped like this (see docs and /shared/notes on cost): reading `pg_locks` and
/// calling `pg_blocking_pids()` take the lock manager's partition locks, so
/// - `pg_blocking_pids()` runs only for backends whose `wait_event_type = 'Lock'`;
/// - `pg_locks` is read only when someone waits or some transaction is older than the hold
///   threshold (`$2`); in a quiet cycle the function scan is never executed (a gated one-time
///   filter); the lock-table usage count reads it a second time only when asked (`$3`, once a
///   minute by default);
/// - of `pg_locks`, only rows that matter are kept, filtered during the scan: waiting locks,
///   locks of blockers, locks of prepared transactions (pid NULL) and locks of transactions
///   older than the hold threshold;
/// - a long transaction's locks are read once, when it is first seen older than the threshold,
///   and again only when they changed: `$4` lists the long transactions whose locks the reader
///   already holds, as `[[pid, xact_start, fingerprint], …]`, and the statement skips them. In
///   the once-a-minute lock-table reading (`$3`), the same single pass over pg_locks computes each
///   pid's fingerprint (lock count and a sum over targets and modes), and a long transaction whose
///   fingerprint moved is read again. Returning every lock of every long transaction every second
///   was 14× the cost of reading pg_locks on a busy cluster (docs/benchmarks.md); now a steady
///   cycle does not read pg_locks at all unless someone waits or a transaction newly crossed the
///   threshold. `long_read` lists `[pid, fingerprint]` of the transactions read in full this time.
/// Relation names are resolved here only where the OID belongs to this database (or is a shared
/// catalog); other databases' OIDs are resolved by ``RelationNameResolver`` on a connection to
/// that database, because this database's catalog would name the wrong table.
///
/// Of pg_stat_activity, only the backends that matter come back as JSON — waiters, their
/// blockers, long transactions, and the parallel groups of these — and of those only the ones
/// the reader doesn't already know unchanged: a long transaction in `$4` whose `state_change`
/// is older than the previous capture (`$5`) is not returned again (`long_kept` says it is
/// still there; `SamplerMemory` carries its row). Everything else is counts
/// (`backend_count`) and, for sessions new since `$5`, their database (`sessions`; all of
/// them in a lock-table cycle). The cluster's identity, version and lock-table capacity never
/// change on a connection and are read once (`connectionFactsSQL`).
///
/// A waiter already read is not read again: `$6` lists the waits whose lock details the reader
/// holds, as `[[pid, backend_start, query_start, wait_event, [blocked_by, sorted]], …]`
/// (`SamplerMemory.WaitKey`); when every current waiter matches one, pg_locks is not read
/// (`locks_read` false) and the reader adds the remembered locks of the waiters and of the
/// blockers `pg_blocking_pids()` named this time. Any new or changed wait, a new blocker, a
/// blocker whose `state_change` moved since `$5` (it ran a statement, or its own wait ended and it
/// took the lock), or the once-a-minute lock-table cycle (`$3`) reads pg_locks again. What is
/// carried stale: locks a blocker takes in the middle of one statement that is still running, with
/// its waiters' waits unchanged — seen at the next lock-table cycle, at most
/// `lockTableCheckIntervalSeconds` (60 s) late.
///
/// Parameters: `$1` query text length, `$2` hold threshold in seconds, `$3` force reading
/// pg_locks (lock-table usage and fingerprints), `$4` long transactions whose locks are already
/// known (jsonb; NULL or `[]` = read them all), `$5` the previous cycle's `captured_at`
/// (timestamptz; NULL = return every backend that matters), `$6` known waits (jsonb; NULL or
/// `[]` = none known).
public enum SnapshotQuery {
    /// A pid's locks in one text: their count and a sum over type, mode and target. Computed the
    /// same way over pg_locks (`scan`) and over the rows returned (`lk`), so equal text = same
    /// locks, barring a swap that keeps count and sum.
    public static let fingerprint = "count(*)::text || '/' || sum(hashtext(locktype || ':' || mode)::int8 + coalesce(relation, objid, 0) + coalesce(page, 0) + coalesce(tuple, 0))::text"

    public static let sql = """
        WITH act AS MATERIALIZED (
            SELECT a.pid, a.backend_start, a.backend_type, a.datname, a.usename, a.application_name,
                   a.client_addr, a.state, a.xact_start, a.query_start, a.state_change,
                   a.wait_event_type, a.wait_event, a.query, a.leader_pid, a.usesysid,
                   CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid) END AS blocked_by
            FROM pg_stat_activity a
        ),
        known AS MATERIALIZED (
            SELECT (k->>0)::int AS pid, (k->>1)::timestamptz AS xact_start, k->>2 AS fp FROM jsonb_array_elements(coalesce($4::jsonb, '[]')) k
        ),
        scan AS MATERIALIZED (
            SELECT pid, count(*) FILTER (WHERE NOT fastpath) AS slow, \(fingerprint) AS fp
            FROM (SELECT l.pid, l.locktype, l.mode, l.relation::int8 AS relation, l.objid::int8 AS objid, l.page, l.tuple, l.fastpath
                  FROM pg_locks l WHERE $3::bool) s
            GROUP BY pid
        ),
        valid AS MATERIALIZED (
            SELECT k.pid, k.xact_start FROM known k LEFT JOIN scan s ON s.pid = k.pid
            WHERE NOT $3::bool OR k.fp = s.fp
        ),
        longx AS MATERIALIZED (
            SELECT a.pid FROM act a
            WHERE a.xact_start < now() - make_interval(secs => $2::float8)
              AND NOT EXISTS (SELECT 1 FROM valid v WHERE v.pid = a.pid AND v.xact_start = a.xact_start)
        ),
        blockers AS MATERIALIZED (
            SELECT DISTINCT unnest(blocked_by) AS pid FROM act WHERE blocked_by IS NOT NULL
        ),
        core AS MATERIALIZED (
            SELECT a.pid, a.leader_pid FROM act a
            WHERE a.wait_event_type = 'Lock'
               OR a.pid IN (SELECT pid FROM blockers)
               OR a.pid IN (SELECT pid FROM longx)
               OR (a.xact_start < now() - make_interval(secs => $2::float8)
                   AND (NOT EXISTS (SELECT 1 FROM known k WHERE k.pid = a.pid AND k.xact_start = a.xact_start)
                        OR $5::timestamptz IS NULL OR a.state_change >= $5::timestamptz))
        ),
        known_waits AS MATERIALIZED (
            SELECT (k->>0)::int AS pid, (k->>1)::timestamptz AS backend_start, (k->>2)::timestamptz AS query_start,
                   k->>3 AS wait_event, k->4 AS blocked_by
            FROM jsonb_array_elements(coalesce($6::jsonb, '[]')) k
        ),
        need AS (
            SELECT EXISTS (SELECT 1 FROM act a WHERE a.wait_event_type = 'Lock'
                             AND ($3::bool OR NOT EXISTS (
                                 SELECT 1 FROM known_waits w
                                 WHERE w.pid = a.pid AND w.backend_start IS NOT DISTINCT FROM a.backend_start
                                   AND w.query_start IS NOT DISTINCT FROM a.query_start AND w.wait_event IS NOT DISTINCT FROM a.wait_event
                                   AND w.blocked_by = (SELECT coalesce(jsonb_agg(x ORDER BY x), '[]'::jsonb) FROM unnest(a.blocked_by) x)))
                   )
                   -- A blocker that ran a statement or finished waiting since the previous capture may
                   -- hold locks the reader has not seen: read them (its waiters' keys did not move).
                   OR EXISTS (SELECT 1 FROM act a WHERE a.pid IN (SELECT pid FROM blockers) AND a.state_change >= $5::timestamptz)
                   AS someone_waits,
                   EXISTS (SELECT 1 FROM longx) AS long_xacts
        ),
        lk AS MATERIALIZED (
            SELECT l.locktype, l.database::int8 AS database, l.relation::int8 AS relation, l.page, l.tuple, l.virtualxid, l.transactionid::text AS transactionid,
                   l.classid::int8 AS classid, l.objid::int8 AS objid, l.objsubid, l.virtualtransaction, l.pid, l.mode, l.granted, l.fastpath, l.waitstart
            FROM pg_locks l, need
            WHERE (need.someone_waits OR need.long_xacts)
              AND (NOT l.granted
                   OR l.pid IS NULL
                   OR l.pid IN (SELECT unnest(blocked_by) FROM act WHERE blocked_by IS NOT NULL)
                   OR l.pid IN (SELECT pid FROM longx))
        )
        SELECT
            now() AS captured_at,
            current_database() AS current_database,
            (SELECT json_agg(b) FROM (
                SELECT a.pid, a.backend_start, a.backend_type, a.datname, a.usename, a.application_name,
                       host(a.client_addr) AS client_addr, a.state, a.xact_start, a.query_start, a.state_change,
                       a.wait_event_type, a.wait_event, left(a.query, $1::int) AS query, a.leader_pid,
                       coalesce(r.rolsuper, a.usesysid IS NOT NULL) AS is_superuser,   -- role gone: counted as superuser, like the signalling guard
                       a.blocked_by
                FROM act a LEFT JOIN pg_roles r ON r.oid = a.usesysid
                WHERE a.pid IN (SELECT pid FROM core) OR a.pid IN (SELECT leader_pid FROM core)
                   OR a.leader_pid IN (SELECT pid FROM core)
            ) b) AS backends,
            (SELECT count(*) FROM act) AS backend_count,
            (SELECT json_agg(k.pid) FROM known k JOIN act a ON a.pid = k.pid AND a.xact_start = k.xact_start) AS long_kept,
            (SELECT json_agg(json_build_array(pid, datname, backend_start)) FROM act
             WHERE datname IS NOT NULL AND ($3::bool OR $5::timestamptz IS NULL OR backend_start >= $5::timestamptz)) AS sessions,
            (SELECT json_agg(x) FROM (
                SELECT lk.*, d.datname AS database_name,
                       CASE WHEN c.oid IS NOT NULL THEN quote_ident(n.nspname) || '.' || quote_ident(c.relname) END AS relation_name
                FROM lk
                LEFT JOIN pg_database d ON d.oid = lk.database
                LEFT JOIN pg_class c ON c.oid = lk.relation
                     AND (lk.database = 0 OR lk.database = (SELECT oid FROM pg_database WHERE datname = current_database()))
                LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
            ) x) AS locks,
            (SELECT someone_waits OR long_xacts FROM need) AS locks_read,
            (SELECT CASE WHEN $3::bool THEN coalesce(sum(slow), 0) END FROM scan) AS locks_in_use,
            (SELECT json_agg(json_build_array(x.pid, f.fp)) FROM longx x LEFT JOIN (
                SELECT pid, \(fingerprint) AS fp FROM lk WHERE pid IN (SELECT pid FROM longx) GROUP BY pid) f ON f.pid = x.pid) AS long_read,
            (SELECT json_agg(p) FROM (SELECT gid, transaction::text AS transaction, owner, database, prepared FROM pg_prepared_xacts) p) AS prepared,
            (SELECT json_object_agg(datname, deadlocks) FROM pg_stat_database WHERE datname IS NOT NULL) AS deadlocks
        """

    /// The statement for a server version: `pg_locks.waitstart` exists from PostgreSQL 14; on 13
    /// it reads as NULL (waits are then timed from the waiter's state_change).
    public static func sql(serverVersion: Int) -> String {
        serverVersion >= 140000 ? sql : sql.replacingOccurrences(of: "l.fastpath, l.waitstart", with: "l.fastpath, NULL::timestamptz AS waitstart")
    }

    /// Capacity of the shared lock table: `max_locks_per_transaction × (max_connections +
    /// max_prepared_transactions)`. Settings that need a restart, so read once per connection.
    /// With what else never changes on a connection: the cluster's identity and version.
    public static let connectionFactsSQL = """
        SELECT (SELECT system_identifier::text FROM pg_control_system()) AS system_identifier,
               current_setting('server_version_num')::int AS server_version_num,
               current_setting('max_locks_per_transaction')::bigint
               * (current_setting('max_connections')::bigint + current_setting('max_prepared_transactions')::bigint) AS capacity
        """
}
