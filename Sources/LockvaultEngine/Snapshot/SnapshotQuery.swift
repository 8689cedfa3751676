import Foundation
import LockvaultCore

/// The one statement a sampling cycle sends to the monitored cluster.
///
/// Why one statement: `pg_stat_activity`, `pg_locks` and `pg_blocking_pids()` are each read at
/// a slightly different instant; one round trip keeps them as close together as the server
/// allows and costs one network hop.
///
/// Why it is shaped like this (docs/operations.md, "What a cycle reads"): reading `pg_locks` and
/// calling `pg_blocking_pids()` each take all of the lock manager's partition locks, and a
/// pg_locks pass copies the whole lock table, so a cycle reads only what it must, the way
/// ``LockReadPlan`` chose (`$9`):
/// - `pg_locks` way: who blocks whom comes from one `pg_locks` read, by ``LockQueue`` (holders of
///   a conflicting lock, and waiters ahead in the queue by `waitstart`, which every supported
///   server has: ``ServerCapabilities``);
/// - `blocking_pids` way: `pg_blocking_pids()` of each new long wait's lock group (`bp`), with
///   the lock types the group waits for; no pass, unless one of its edges' kinds only pg_locks
///   can tell (``AnsweredWaits``; `undecided`), and no pass for a transaction newly past the hold
///   threshold (its locks are read at the next pass). `answered` lists `[pid, group, blockers]`;
/// - a lock wait younger than `sampling.min_wait_seconds` is a short wait: counted (`waits`), not
///   resolved. A wait's age is known without pg_locks from the cycle that first saw it: `$7` lists
///   the waits seen before as `[[pid, backend_start, query_start, wait_event, first_seen], …]`
///   and `$8` the age from which a wait is resolved (0: every wait; `long_waits` lists them);
/// - `pg_locks` is read (once: `pl`, which also serves the lock-table count) only when a long wait
///   is new or changed, when some transaction newly crossed the hold threshold (`$2`), or when
///   forced (`$3`, the lock-table reading, once a minute by default); in a quiet cycle or a storm of
///   short waits the function scan is never executed;
/// - of `pg_locks`, only rows that matter come back: the long waiters' waiting locks, and the
///   granted locks of prepared transactions (pid NULL), of the sessions holding or queued for
///   what the long waiters want, and of transactions older than the hold threshold — of these,
///   a session's locks on what the long waiters want, and of its others only the `$10`
///   strongest (`held_counts` gives `[pid, granted locks]` of the sessions cut so). `locks_total`
///   is the rows pg_locks had (what the next pass is expected to cost);
/// - a long transaction's locks are read once, when it is first seen older than the threshold,
///   and again only when they changed: `$4` lists the long transactions whose locks the reader
///   already holds, as `[[pid, xact_start, fingerprint], …]`, and the statement skips them. In
///   the lock-table reading (`$3`), the same pass over pg_locks computes each pid's fingerprint
///   (lock count and a sum over targets and modes), and a long transaction whose fingerprint
///   moved is read again. `long_read` lists `[pid, fingerprint]` of those read in full this time.
/// Relation names are resolved here only where the OID belongs to this database (or is a shared
/// catalog); other databases' OIDs are resolved by ``RelationNameResolver`` on a connection to
/// that database, because this database's catalog would name the wrong table.
///
/// Of pg_stat_activity, only the backends that matter come back as JSON — long waiters, their
/// blockers, long transactions, and the parallel groups of these — and of those only the ones
/// the reader doesn't already know unchanged: a long transaction in `$4` whose `state_change`
/// is older than the previous capture (`$5`) is not returned again (`long_kept` says it is
/// still there; `SamplerMemory` carries its row). Everything else is counts
/// (`backend_count`) and, for sessions new since `$5`, their database (`sessions`; all of
/// them in a lock-table cycle). The cluster's identity, version and lock-table capacity never
/// change on a connection and are read once (`connectionFactsSQL`).
///
/// A long wait already read is not read again: `$6` lists them, as
/// `[[pid, backend_start, query_start, wait_event, [[blocker, blocker_was_waiting], …]], …]`
/// (`SamplerMemory.WaitKey`). When every long waiter matches one (`carried`), and none of its
/// blockers left, ran a statement or changed state since `$5`, or started or stopped waiting,
/// pg_locks is not read (`locks_read` false) and the reader carries the waits' blockers and locks.
/// A session that holds nothing a waiter needs cannot come to block it without queueing behind it,
/// so nothing new can block a carried wait unseen. What is carried stale: locks a blocker takes in
/// the middle of one statement that is still running, with its waiters' waits unchanged — seen at
/// the next lock-table cycle, at most `lockTableCheckIntervalSeconds` (60 s) late.
///
/// Parameters: `$1` query text length, `$2` hold threshold in seconds, `$3` force reading
/// pg_locks (lock-table usage and fingerprints), `$4` long transactions whose locks are already
/// known (jsonb; NULL or `[]` = read them all), `$5` the previous cycle's `captured_at`
/// (timestamptz; NULL = return every backend that matters), `$6` known waits (jsonb; NULL or
/// `[]` = none known), `$7` waits seen before with when (jsonb), `$8` the age in seconds from which
/// a wait is resolved (0 = every wait), `$9` how a new long wait is learnt (`pg_locks` or
/// `blocking_pids`, ``LockReadPlan/Way``), `$10` the granted locks kept per session beyond
/// those on what the long waiters want, `$11` the pids whose sessions to follow whatever they do
/// (int4[]; the roots of open blocking episodes): `watched` gives each one's `[pid, backend_start,
/// xact_start, state, state_change]` while it exists, from the pg_stat_activity read already made.
/// `query_id` is the server's (14+), NULL where `compute_query_id` computes none.
public enum SnapshotQuery {
    /// A pid's locks in one text: their count and a sum over type, mode and target. Computed the
    /// same way over all of pg_locks in the lock-table reading (`scan`) and when a long
    /// transaction's locks are read (`long_read`), so equal text = same locks, barring a swap that
    /// keeps count and sum.
    public static let fingerprint = "count(*)::text || '/' || sum(hashtext(locktype || ':' || mode)::int8 + coalesce(relation, objid, 0) + coalesce(page, 0) + coalesce(tuple, 0))::text"

    /// What a lock is on, as a row of its target fields (NULLs made comparable): whose lock is on
    /// what a long waiter wants. A row, not a text: building a text for each of 400,000 locks
    /// tripled the cost of a pass.
    static let targetFields = ["locktype", "coalesce(%.database, -1)", "coalesce(%.relation, -1)", "coalesce(%.page, -1)", "coalesce(%.tuple, -1)",
                               "coalesce(%.virtualxid, '')", "coalesce(%.transactionid, '')", "coalesce(%.classid, -1)", "coalesce(%.objid, -1)",
                               "coalesce(%.objsubid, -1)"]

    /// `alias`'s target fields, named `t0…t9` when `named`.
    static func targetKey(_ alias: String, named: Bool = false) -> String {
        targetFields.enumerated().map { i, f in
            (f == "locktype" ? "\(alias).locktype" : f.replacingOccurrences(of: "%", with: alias)) + (named ? " AS t\(i)" : "")
        }.joined(separator: ", ")
    }

    /// A lock's place among a session's locks, strongest first (lower is stronger): its mode's
    /// strength, then what it is on (relation or object id, page and tuple), in one int8. Two
    /// locks of a session rarely share it (the same mode on the same tuple of a relation,
    /// say); when they do, both are kept.
    static func strengthRank(_ l: String) -> String {
        "((coalesce(array_position(ARRAY['AccessExclusiveLock', 'ExclusiveLock', 'ShareRowExclusiveLock', 'ShareLock', 'ShareUpdateExclusiveLock', "
            + "'RowExclusiveLock', 'RowShareLock', 'AccessShareLock'], \(l).mode), 9)::int8 << 58) "
            + "| ((coalesce(\(l).relation, \(l).objid, \(l).classid, 0) & 4294967295) << 24) "
            + "| ((coalesce(\(l).page, 0)::int8 * 65536 + coalesce(\(l).tuple, 0)) & 16777215))"
    }

    /// `alias`'s target is `w`'s (a row of `wanted`): the join condition.
    static func sameTarget(_ alias: String, _ w: String) -> String {
        targetFields.enumerated().map { i, f in
            "\(w).t\(i) = " + (f == "locktype" ? "\(alias).locktype" : f.replacingOccurrences(of: "%", with: alias))
        }.joined(separator: " AND ")
    }

    public static let sql = """
        WITH act AS MATERIALIZED (
            SELECT a.pid, a.backend_start, a.backend_type, a.datname, a.usename, a.application_name,
                   a.client_addr, a.state, a.xact_start, a.query_start, a.state_change,
                   a.wait_event_type, a.wait_event, a.query, a.leader_pid, a.usesysid, a.query_id
            FROM pg_stat_activity a
        ),
        seen AS MATERIALIZED (
            SELECT (k->>0)::int AS pid, (k->>1)::timestamptz AS backend_start, (k->>2)::timestamptz AS query_start,
                   k->>3 AS wait_event, (k->>4)::timestamptz AS first_seen
            FROM jsonb_array_elements(coalesce($7::jsonb, '[]')) k
        ),
        longw AS MATERIALIZED (
            SELECT a.pid FROM act a
            WHERE a.wait_event_type = 'Lock'
              AND ($8::float8 <= 0 OR EXISTS (
                  SELECT 1 FROM seen s
                  WHERE s.pid = a.pid AND s.backend_start IS NOT DISTINCT FROM a.backend_start
                    AND s.query_start IS NOT DISTINCT FROM a.query_start AND s.wait_event IS NOT DISTINCT FROM a.wait_event
                    AND s.first_seen <= now() - make_interval(secs => $8::float8)))
        ),
        known AS MATERIALIZED (
            SELECT (k->>0)::int AS pid, (k->>1)::timestamptz AS xact_start, k->>2 AS fp FROM jsonb_array_elements(coalesce($4::jsonb, '[]')) k
        ),
        known_waits AS MATERIALIZED (
            SELECT (k->>0)::int AS pid, (k->>1)::timestamptz AS backend_start, (k->>2)::timestamptz AS query_start,
                   k->>3 AS wait_event, coalesce(k->4, '[]') AS blockers
            FROM jsonb_array_elements(coalesce($6::jsonb, '[]')) k
        ),
        carried0 AS MATERIALIZED (
            SELECT w.pid, w.blockers FROM known_waits w JOIN act a ON a.pid = w.pid
            WHERE a.pid IN (SELECT pid FROM longw) AND $5::timestamptz IS NOT NULL
              AND w.backend_start IS NOT DISTINCT FROM a.backend_start AND w.query_start IS NOT DISTINCT FROM a.query_start
              AND w.wait_event IS NOT DISTINCT FROM a.wait_event
              -- Its blockers as they were: still there, no statement or state change since the
              -- previous capture, and waiting (queued ahead) or not as before. A blocker is a lock
              -- group named by its leader: it waits when any member waits.
              AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(w.blockers) b LEFT JOIN act x ON x.pid = (b->>0)::int
                              WHERE (b->>0)::int <> 0
                                AND (x.pid IS NULL OR x.state_change >= $5::timestamptz
                                     OR EXISTS (SELECT 1 FROM act y WHERE (y.pid = x.pid OR y.leader_pid = x.pid)
                                                AND y.wait_event_type = 'Lock') <> (b->>1)::bool))
        ),
        -- A known wait queued behind a wait that is learnt again is learnt again too, and so on
        -- down the queue: what changed ahead of it (a session there took a stronger lock at once,
        -- holding one already) may block it now. A pass learns every wait anyway; this is for
        -- the blocking_pids way, which asks only for the waits not carried.
        relearnt AS MATERIALIZED (
            WITH RECURSIVE r(grp) AS (
                SELECT coalesce(a.leader_pid, a.pid) FROM act a WHERE a.pid IN (SELECT pid FROM longw) AND a.pid NOT IN (SELECT pid FROM carried0)
                UNION
                SELECT coalesce(a.leader_pid, a.pid) FROM r, carried0 c JOIN act a ON a.pid = c.pid
                WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(c.blockers) b WHERE (b->>0)::int = r.grp)
            )
            SELECT grp FROM r
        ),
        carried AS MATERIALIZED (
            SELECT c.pid, c.blockers FROM carried0 c JOIN act a ON a.pid = c.pid
            WHERE coalesce(a.leader_pid, a.pid) NOT IN (SELECT grp FROM relearnt)
        ),
        -- The blocking_pids way (LockReadPlan, $9): the server's blockers of each new long wait's
        -- lock group, with the lock types the group waits for (AnsweredWaits). Not in a full pass ($3).
        bp AS MATERIALIZED (
            SELECT DISTINCT ON (w.grp) w.pid, w.grp, pg_blocking_pids(w.pid) AS blockers,
                   ARRAY(SELECT DISTINCT y.wait_event FROM act y
                         WHERE coalesce(y.leader_pid, y.pid) = w.grp AND y.wait_event_type = 'Lock' ORDER BY 1) AS types
            FROM (SELECT a.pid, coalesce(a.leader_pid, a.pid) AS grp FROM act a
                  WHERE a.pid IN (SELECT pid FROM longw) AND a.pid NOT IN (SELECT pid FROM carried)) w
            WHERE $9::text = 'blocking_pids' AND NOT $3::bool
            ORDER BY w.grp, w.pid
        ),
        longx0 AS MATERIALIZED (
            SELECT a.pid FROM act a
            WHERE a.xact_start < now() - make_interval(secs => $2::float8)
              AND NOT EXISTS (SELECT 1 FROM known k WHERE k.pid = a.pid AND k.xact_start = a.xact_start)
        ),
        gate AS MATERIALIZED (
            SELECT $9::text = 'pg_locks' AND EXISTS (SELECT 1 FROM longw WHERE pid NOT IN (SELECT pid FROM carried)) AS someone_waits,
                   $9::text = 'pg_locks' AND EXISTS (SELECT 1 FROM longx0) AS long_xacts,
                   -- An answered edge whose kind only pg_locks can tell (AnsweredWaits: a prepared
                   -- transaction, or a blocker waiting for a lock type the waiter waits for, but for
                   -- tuple behind tuple and the types where every waiter asks ShareLock).
                   EXISTS (SELECT 1 FROM bp, unnest(bp.blockers) b(pid)
                           WHERE b.pid = 0
                              OR (bp.types <> ARRAY['tuple'] AND EXISTS (
                                  SELECT 1 FROM act y WHERE coalesce(y.leader_pid, y.pid) = b.pid AND y.wait_event_type = 'Lock'
                                    AND y.wait_event = ANY (bp.types) AND y.wait_event NOT IN ('transactionid', 'virtualxid', 'spectoken')))) AS undecided
        ),
        pl AS MATERIALIZED (
            SELECT l.locktype, l.database::int8 AS database, l.relation::int8 AS relation, l.page, l.tuple, l.virtualxid, l.transactionid::text AS transactionid,
                   l.classid::int8 AS classid, l.objid::int8 AS objid, l.objsubid, l.virtualtransaction, l.pid, l.mode, l.granted, l.fastpath, l.waitstart
            FROM pg_locks l, gate
            WHERE $3::bool OR gate.someone_waits OR gate.long_xacts OR gate.undecided
        ),
        scan AS MATERIALIZED (
            SELECT pid, count(*) FILTER (WHERE NOT fastpath) AS slow, \(fingerprint) AS fp FROM pl WHERE $3::bool GROUP BY pid
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
        wanted AS MATERIALIZED (
            SELECT DISTINCT \(targetKey("pl", named: true)) FROM pl WHERE NOT granted AND pid IN (SELECT pid FROM longw)
        ),
        holders AS MATERIALIZED (
            SELECT DISTINCT p.pid FROM pl p JOIN wanted w ON \(sameTarget("p", "w"))
            WHERE p.pid IS NOT NULL AND (p.granted OR p.pid IN (SELECT pid FROM longw))
        ),
        blockers AS MATERIALIZED (
            SELECT pid FROM holders
            UNION SELECT (b->>0)::int FROM carried c, jsonb_array_elements(c.blockers) b
            UNION SELECT unnest(blockers) FROM bp
        ),
        core AS MATERIALIZED (
            SELECT a.pid, a.leader_pid FROM act a
            WHERE a.pid IN (SELECT pid FROM longw)
               OR a.pid IN (SELECT pid FROM blockers)
               OR a.pid IN (SELECT pid FROM longx)
               OR (a.xact_start < now() - make_interval(secs => $2::float8)
                   AND (NOT EXISTS (SELECT 1 FROM known k WHERE k.pid = a.pid AND k.xact_start = a.xact_start)
                        OR $5::timestamptz IS NULL OR a.state_change >= $5::timestamptz))
        ),
        lk0 AS MATERIALIZED (
            SELECT p.*, p.granted AND p.pid IS NOT NULL AND w.t0 IS NULL AS other
            FROM pl p LEFT JOIN wanted w ON \(sameTarget("p", "w"))
            WHERE (NOT p.granted AND p.pid IN (SELECT pid FROM longw))
               OR (p.granted AND (p.pid IS NULL OR p.pid IN (SELECT pid FROM holders) OR p.pid IN (SELECT pid FROM longx)))
        ),
        -- Of a session's granted locks on what no long waiter wants, the $10 strongest (a
        -- session holding a lock on each of 2,000 partitions is not 2,000 rows): `cut` has the
        -- $10th strongest's rank of each session holding more, and how many it holds
        -- (held_counts). Per session, not one sort of every lock: at 400,000 locks that sort
        -- was most of a first cycle.
        cut AS MATERIALIZED (
            SELECT l.pid, (array_agg(\(strengthRank("l")) ORDER BY \(strengthRank("l"))) FILTER (WHERE l.other))[$10::int] AS kth,
                   count(*) FILTER (WHERE l.granted) AS held
            FROM lk0 l WHERE l.pid IS NOT NULL GROUP BY l.pid HAVING count(*) FILTER (WHERE l.other) > $10::int
        ),
        lk AS MATERIALIZED (
            SELECT l.locktype, l.database, l.relation, l.page, l.tuple, l.virtualxid, l.transactionid, l.classid, l.objid, l.objsubid,
                   l.virtualtransaction, l.pid, l.mode, l.granted, l.fastpath, l.waitstart
            FROM lk0 l LEFT JOIN cut c ON c.pid = l.pid
            WHERE NOT l.other OR c.kth IS NULL OR \(strengthRank("l")) <= c.kth
        )
        SELECT
            now() AS captured_at,
            current_database() AS current_database,
            -- In a stable order (pid, then each lock's identity), so that an unchanged cycle comes back
            -- the same, and the rows built from it are recognised as the previous cycle's.
            (SELECT json_agg(b ORDER BY b.pid) FROM (
                SELECT a.pid, a.backend_start, a.backend_type, a.datname, a.usename, a.application_name,
                       host(a.client_addr) AS client_addr, a.state, a.xact_start, a.query_start, a.state_change,
                       a.wait_event_type, a.wait_event, left(a.query, $1::int) AS query, nullif(a.query_id, 0)::text AS query_id, a.leader_pid,
                       coalesce(r.rolsuper, a.usesysid IS NOT NULL) AS is_superuser,   -- role gone: counted as superuser, like the signalling guard
                       NULL::int[] AS blocked_by
                FROM act a LEFT JOIN pg_roles r ON r.oid = a.usesysid
                WHERE a.pid IN (SELECT pid FROM core) OR a.pid IN (SELECT leader_pid FROM core)
                   OR a.leader_pid IN (SELECT pid FROM core)
            ) b) AS backends,
            (SELECT count(*) FROM act) AS backend_count,
            (SELECT json_agg(json_build_array(pid, backend_start, query_start, wait_event, coalesce(leader_pid, pid))) FROM act WHERE wait_event_type = 'Lock') AS waits,
            (SELECT json_agg(pid) FROM longw) AS long_waits,
            (SELECT json_agg(json_build_array(pid, backend_start, xact_start, state, state_change)) FROM act
             WHERE pid = ANY (coalesce($11::int4[], '{}'))) AS watched,
            (SELECT json_agg(k.pid) FROM known k JOIN act a ON a.pid = k.pid AND a.xact_start = k.xact_start) AS long_kept,
            (SELECT json_agg(json_build_array(pid, datname, backend_start)) FROM act
             WHERE datname IS NOT NULL AND ($3::bool OR $5::timestamptz IS NULL OR backend_start >= $5::timestamptz)) AS sessions,
            (SELECT json_agg(x ORDER BY x.pid, x.granted, x.locktype, x.database, x.relation, x.page, x.tuple, x.virtualxid, x.transactionid,
                                        x.classid, x.objid, x.objsubid, x.mode) FROM (
                SELECT lk.*, d.datname AS database_name,
                       CASE WHEN c.oid IS NOT NULL THEN quote_ident(n.nspname) || '.' || quote_ident(c.relname) END AS relation_name
                FROM lk
                LEFT JOIN pg_database d ON d.oid = lk.database
                LEFT JOIN pg_class c ON c.oid = lk.relation
                     AND (lk.database = 0 OR lk.database = (SELECT oid FROM pg_database WHERE datname = current_database()))
                LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
            ) x) AS locks,
            (SELECT $3::bool OR someone_waits OR long_xacts OR undecided FROM gate) AS locks_read,
            (SELECT CASE WHEN $3::bool THEN coalesce(sum(slow), 0) END FROM scan) AS locks_in_use,
            (SELECT CASE WHEN $3::bool OR someone_waits OR long_xacts OR undecided THEN (SELECT count(*) FROM pl) END FROM gate) AS locks_total,
            (SELECT json_agg(json_build_array(pid, grp, blockers)) FROM bp) AS answered,
            (SELECT json_agg(json_build_array(pid, held)) FROM cut) AS held_counts,
            -- Fingerprints of all of a long transaction's locks (pl), not only of those returned:
            -- the lock-table reading's (scan), or computed here for these pids.
            (SELECT json_agg(json_build_array(x.pid, coalesce(s.fp, f.fp))) FROM longx x
             LEFT JOIN scan s ON s.pid = x.pid
             LEFT JOIN (SELECT pid, \(fingerprint) AS fp FROM pl WHERE NOT $3::bool AND pid IN (SELECT pid FROM longx) GROUP BY pid) f
                    ON f.pid = x.pid) AS long_read,
            (SELECT json_agg(p) FROM (SELECT gid, transaction::text AS transaction, owner, database, prepared FROM pg_prepared_xacts) p) AS prepared,
            (SELECT json_object_agg(datname, deadlocks) FROM pg_stat_database WHERE datname IS NOT NULL) AS deadlocks
        """

    /// The server's own answer for the waits pg_locks cannot order (``AmbiguousWaits``): `$1` is
    /// their pids (int4[]). Each call takes the lock manager's partition locks, so it is made
    /// only for those, and only in cycles that read pg_locks. pg_blocking_pids() names lock
    /// group leaders and reports a prepared transaction as 0, as ``LockQueue`` does.
    public static let blockingPidsSQL = """
        SELECT w AS pid, to_json(pg_blocking_pids(w))::text AS blocked_by FROM unnest($1::int4[]) w
        """

    /// Capacity of the shared lock table: `max_locks_per_transaction × (max_connections +
    /// max_prepared_transactions)`. Settings that need a restart, so read once per connection.
    /// With what else never changes on a connection: the cluster's identity and version.
    public static let connectionFactsSQL = """
        SELECT (SELECT system_identifier::text FROM pg_control_system()) AS system_identifier,
               current_setting('server_version_num')::int AS server_version_num,
               current_setting('max_locks_per_transaction')::bigint
               * (current_setting('max_connections')::bigint + current_setting('max_prepared_transactions')::bigint) AS capacity,
               (SELECT setting::float8 / 1000 FROM pg_settings WHERE name = 'deadlock_timeout') AS deadlock_timeout_seconds
        """
}
