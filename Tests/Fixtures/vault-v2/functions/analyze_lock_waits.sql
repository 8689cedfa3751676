-- Aggregates the waits recorded in lock_activity_s (waiting locks) whose wait overlapped
-- [p_from, p_to) into lock_wait_analysis_h/_s, per database x lock target x mode. Running it
-- again for the same period adds a satellite row only when the numbers changed.
CREATE OR REPLACE FUNCTION lock_monitoring.analyze_lock_waits(
    p_from timestamptz DEFAULT date_trunc('hour', now()) - interval '1 hour',
    p_to   timestamptz DEFAULT date_trunc('hour', now()))
RETURNS TABLE (database_name text, lock_target text, lock_mode text, wait_count integer, avg_wait_seconds double precision,
               p95_wait_seconds double precision, max_wait_seconds double precision, recommendation text)
LANGUAGE plpgsql
SET search_path = pg_catalog, lock_monitoring
AS $fn$
DECLARE
    v_src text := 'lockvault:analyze_lock_waits';
BEGIN
    IF p_to <= p_from THEN
        RAISE EXCEPTION 'analyze_lock_waits: p_to (%) must be after p_from (%)', p_to, p_from USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
    WITH waits AS (
        -- One wait = one waiting lock (hub); its wait began at wait_start (or lock_since) and
        -- lasted until its last waiting row ended (or p_to while still waiting).
        SELECT h.system_identifier, coalesce(s.database_name, '') AS database_name, s.lock_target, s.lock_mode,
               min(coalesce(s.wait_start, s.lock_since)) AS began,
               least(max(coalesce(s.load_end_date, p_to)), p_to) AS ended,
               (array_agg(s.blocking_pid ORDER BY s.load_date))[1] AS blocker_pid,
               (array_agg(h.lock_activity_hk))[1] AS hk
        FROM lock_activity_s s JOIN lock_activity_h h USING (lock_activity_hk)
        WHERE NOT s.lock_granted
          AND coalesce(s.wait_start, s.lock_since) < p_to
          AND coalesce(s.load_end_date, 'infinity') > p_from
        GROUP BY h.system_identifier, h.lock_activity_hk, coalesce(s.database_name, ''), s.lock_target, s.lock_mode
    ),
    labelled AS (
        SELECT w.*, extract(epoch FROM (w.ended - w.began))::double precision AS seconds,
               coalesce((SELECT bs.user_name || '/' || coalesce(nullif(bs.application_name, ''), '?')
                         FROM lock_blocking_l l JOIN blocking_session_s bs ON bs.blocking_session_hk = l.blocking_session_hk
                         WHERE l.lock_activity_hk = w.hk ORDER BY bs.load_date LIMIT 1),
                        CASE WHEN w.blocker_pid = 0 THEN 'prepared transaction' ELSE 'pid ' || w.blocker_pid END) AS blocker
        FROM waits w
    ),
    buckets AS (
        SELECT l.system_identifier, l.database_name, l.lock_target, l.lock_mode,
               count(*)::integer AS n, sum(l.seconds) AS total, avg(l.seconds) AS avg_s, max(l.seconds) AS max_s,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY l.seconds) AS p95,
               (SELECT array_agg(b.blocker ORDER BY b.c DESC, b.blocker) FROM (
                    SELECT l2.blocker, count(*) AS c FROM labelled l2
                    WHERE l2.system_identifier = l.system_identifier AND l2.database_name = l.database_name
                      AND l2.lock_target = l.lock_target AND l2.lock_mode = l.lock_mode
                    GROUP BY l2.blocker ORDER BY count(*) DESC, l2.blocker LIMIT 3) b) AS top
        FROM labelled l
        GROUP BY l.system_identifier, l.database_name, l.lock_target, l.lock_mode
    ),
    advised AS (
        SELECT b.*, hash_key(b.system_identifier, bk_timestamp(p_from), bk_timestamp(p_to), b.database_name, b.lock_target, b.lock_mode) AS hk,
               CASE
                   WHEN b.lock_mode = 'AccessShareLock' OR b.lock_mode = 'RowExclusiveLock' AND b.lock_target LIKE 'relation %'
                       THEN 'reads/writes waited behind DDL or explicit LOCK: run DDL with a short lock_timeout and retries'
                   WHEN b.lock_target LIKE 'transaction %' OR b.lock_target LIKE 'tuple %'
                       THEN 'row-level contention: shorten transactions that update these rows, or use SKIP LOCKED / NOWAIT'
                   WHEN b.lock_target LIKE 'advisory %'
                       THEN 'advisory lock queue: check that holders release promptly (pg_advisory_unlock / transaction-level locks)'
                   WHEN b.max_s > 60 THEN 'long waits: look for idle-in-transaction blockers; set idle_in_transaction_session_timeout'
                   ELSE 'brief contention: watch the trend'
               END AS advice
        FROM buckets b
    ),
    hub AS (
        INSERT INTO lock_wait_analysis_h (lock_wait_analysis_hk, tenant_hk, system_identifier, period_start, period_end, database_name, lock_target,
                                          lock_mode, load_date, record_source)
        SELECT a.hk, hash_key(a.database_name), a.system_identifier, p_from, p_to, a.database_name, a.lock_target, a.lock_mode, now(), v_src
        FROM advised a
        ON CONFLICT DO NOTHING
    ),
    ended AS (
        UPDATE lock_wait_analysis_s s SET load_end_date = now()
        FROM advised a
        WHERE s.lock_wait_analysis_hk = a.hk AND s.load_end_date IS NULL
          AND s.hash_diff <> hash_key(a.n::text, a.total::text, a.max_s::text, a.p95::text, array_to_string(a.top, ','), a.advice)
        RETURNING s.lock_wait_analysis_hk
    ),
    sat AS (
        INSERT INTO lock_wait_analysis_s (lock_wait_analysis_hk, load_date, hash_diff, record_source, wait_count, total_wait_seconds, avg_wait_seconds,
                                          max_wait_seconds, p95_wait_seconds, top_blockers, recommendation)
        SELECT a.hk, now(), hash_key(a.n::text, a.total::text, a.max_s::text, a.p95::text, array_to_string(a.top, ','), a.advice), v_src,
               a.n, a.total, a.avg_s, a.max_s, a.p95, coalesce(a.top, '{}'), a.advice
        FROM advised a
        WHERE a.hk IN (SELECT lock_wait_analysis_hk FROM ended)
           OR NOT EXISTS (SELECT 1 FROM lock_wait_analysis_s s WHERE s.lock_wait_analysis_hk = a.hk)
        ON CONFLICT DO NOTHING
    )
    SELECT a.database_name, a.lock_target, a.lock_mode, a.n, a.avg_s, a.p95, a.max_s, a.advice
    FROM advised a ORDER BY a.total DESC;
END
$fn$;
COMMENT ON FUNCTION lock_monitoring.analyze_lock_waits(timestamptz, timestamptz) IS
    'Aggregates recorded lock waits in [p_from, p_to) per database x target x mode into lock_wait_analysis_h/_s; default: the last full hour.';
GRANT EXECUTE ON FUNCTION lock_monitoring.analyze_lock_waits(timestamptz, timestamptz) TO lock_writer_role;
