-- The fleet at a glance: one row per monitored cluster in this vault (many lockvault@NAME
-- instances may write into one vault). The one rule for "alive or stale" lives here: a
-- cluster is stale when its last recorded cycle is stale_after_seconds old or older (the
-- daemon writes a heartbeat at least every 60 s, so the default 90 s allows one missed
-- heartbeat and some lag). fleet_dashboard is fleet_status() with the default; `lockvault
-- status` prints fleet_status(--stale-after), as text or JSON.

-- What it reads, and why: the current cycle summary of each cluster (monitor_cycle_s) carries
-- the blockers by severity (migration 025), so only clusters whose current summary was written
-- without them (before migration 025, or by an older lockvault) have their blockers counted
-- from blocking_session_s, by current_blockers_by_severity() — a function, so that neither its
-- plan nor the partitions it reads cost anything when no cluster needs it. Every partitioned
-- table a query names costs planning over all its partitions, on every call (a LANGUAGE sql
-- function is planned each time, and `lockvault status` opens a new session each time).
-- Deadlocks in 24 h: the current rows of the last day through the partial index on
-- detected_at, each one's cluster looked up in its hub (a probe per deadlock of the last day,
-- not a pass over every deadlock hub).

CREATE OR REPLACE FUNCTION lock_monitoring.current_blockers_by_severity()
RETURNS TABLE (system_identifier text, critical bigint, high bigint, medium bigint, low bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, lock_monitoring
AS $fn$
    SELECT bh.system_identifier,
           count(*) FILTER (WHERE bs.blocking_severity = 'CRITICAL'),
           count(*) FILTER (WHERE bs.blocking_severity = 'HIGH'),
           count(*) FILTER (WHERE bs.blocking_severity = 'MEDIUM'),
           count(*) FILTER (WHERE bs.blocking_severity = 'LOW')
    FROM blocking_session_s bs JOIN blocking_session_h bh USING (blocking_session_hk)
    WHERE bs.load_end_date IS NULL
    GROUP BY 1
$fn$;
COMMENT ON FUNCTION lock_monitoring.current_blockers_by_severity() IS
    'Current blockers (blocking_session_s) by severity, per monitored cluster: what fleet_status shows for a cluster whose current cycle summary does not carry them.';
REVOKE ALL ON FUNCTION lock_monitoring.current_blockers_by_severity() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lock_monitoring.current_blockers_by_severity() TO lock_monitoring_role, lock_writer_role;

CREATE OR REPLACE FUNCTION lock_monitoring.fleet_status(stale_after_seconds double precision DEFAULT 90)
RETURNS TABLE (cluster_name text, system_identifier text, state text, last_cycle_at timestamptz, lag_seconds double precision,
               critical_blockers integer, high_blockers integer, medium_blockers integer, low_blockers integer,
               waiting_sessions integer, longest_wait_seconds double precision, deadlocks_24h integer,
               daemon_version text, buffered_cycles integer, spooled_cycles integer, vault_buffer text,
               recorded_by text, cycle_ms double precision, locks_in_use integer, lock_table_capacity integer, last_gap_end timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, lock_monitoring
AS $fn$
    WITH cur AS (
        SELECT h.system_identifier AS sysid, c.*
        FROM monitor_cycle_s c JOIN monitored_cluster_h h USING (cluster_hk)
        WHERE c.load_end_date IS NULL
    ),
    counted AS (
        -- Clusters whose current summary carries no counts by severity: counted from the satellites.
        SELECT b.* FROM current_blockers_by_severity() b
        WHERE EXISTS (SELECT 1 FROM cur WHERE cur.high_blockers IS NULL)
    ),
    waits AS (
        SELECT lh.system_identifier AS sysid, max(extract(epoch FROM now() - coalesce(ls.wait_start, ls.lock_since)))::float8 AS longest
        FROM lock_activity_s ls JOIN lock_activity_h lh USING (lock_activity_hk)
        WHERE ls.load_end_date IS NULL AND NOT ls.lock_granted
        GROUP BY 1
    ),
    deadlocks AS (
        SELECT x.sysid, count(*) AS n
        FROM (SELECT (SELECT dh.system_identifier FROM deadlock_event_h dh WHERE dh.deadlock_event_hk = ds.deadlock_event_hk) AS sysid
              FROM deadlock_event_s ds
              WHERE ds.load_end_date IS NULL AND ds.detected_at > now() - interval '24 hours') x
        GROUP BY 1
    ),
    gaps AS (
        SELECT g.cluster_hk, max(g.gap_end) AS gap_end FROM monitor_gap_s g GROUP BY 1
    )
    SELECT coalesce(nullif(cur.cluster_name, ''), '-'),
           cur.sysid,
           CASE WHEN extract(epoch FROM now() - cur.last_cycle_at) < stale_after_seconds THEN 'alive' ELSE 'stale' END,
           cur.last_cycle_at,
           extract(epoch FROM now() - cur.last_cycle_at)::float8,
           CASE WHEN cur.high_blockers IS NULL THEN coalesce(b.critical, 0) ELSE cur.critical_blockers END::integer,
           CASE WHEN cur.high_blockers IS NULL THEN coalesce(b.high, 0) ELSE cur.high_blockers END::integer,
           CASE WHEN cur.high_blockers IS NULL THEN coalesce(b.medium, 0) ELSE cur.medium_blockers END::integer,
           CASE WHEN cur.high_blockers IS NULL THEN coalesce(b.low, 0) ELSE cur.low_blockers END::integer,
           cur.waiting_sessions,
           w.longest,
           coalesce(d.n, 0)::integer,
           cur.daemon_version,
           cur.buffered_cycles,
           cur.spooled_cycles,
           CASE WHEN cur.buffered_cycles IS NULL THEN 'unknown'
                WHEN cur.buffered_cycles = 0 THEN 'empty'
                ELSE 'catching up: ' || cur.buffered_cycles || ' cycles buffered' || CASE WHEN cur.spooled_cycles > 0 THEN ', ' || cur.spooled_cycles || ' spooled' ELSE '' END END,
           cur.record_source,
           cur.cycle_ms,
           cur.locks_in_use,
           cur.lock_table_capacity,
           gaps.gap_end
    FROM cur
    LEFT JOIN counted b ON b.system_identifier = cur.sysid
    LEFT JOIN waits w ON w.sysid = cur.sysid
    LEFT JOIN deadlocks d ON d.sysid = cur.sysid
    LEFT JOIN gaps ON gaps.cluster_hk = cur.cluster_hk
    -- 6, 7: critical_blockers, high_blockers.
    ORDER BY extract(epoch FROM now() - cur.last_cycle_at) < stale_after_seconds, 6 DESC, 7 DESC, 1, 2
$fn$;
COMMENT ON FUNCTION lock_monitoring.fleet_status(double precision) IS
    'One row per monitored cluster: liveness (stale when the last cycle is stale_after_seconds old or older — the rule lockvault status uses), current blockers by severity, longest wait, deadlocks in 24 h, daemon version and vault buffer. Stale clusters first, then the most critical.';
REVOKE ALL ON FUNCTION lock_monitoring.fleet_status(double precision) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lock_monitoring.fleet_status(double precision) TO lock_monitoring_role, lock_writer_role;
