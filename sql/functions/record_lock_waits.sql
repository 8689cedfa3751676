-- Which waiting lock waited for which blocker, and how (block_kind hard or soft): lock_blocking_l,
-- first seen at load_date.
-- Row: {lock_activity: <lock key>, blocked_session: <session key>, blocking_session: <session key>, block_kind}.

CREATE OR REPLACE FUNCTION lock_monitoring.record_lock_waits(p_sysid text, p_src text, p_at timestamptz, p_rows jsonb)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, lock_monitoring
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
    v_n integer;
BEGIN
    INSERT INTO lock_blocking_l (lock_blocking_hk, lock_activity_hk, blocking_session_hk, blocked_session_hk, load_date, record_source, block_kind)
    SELECT DISTINCT ON (hk) hk, w.lock_hk, w.blocker_hk, w.waiter_hk, p_at, p_src, w.kind
    FROM (SELECT lock_hk(p_sysid, e.j->'lock_activity') AS lock_hk,
                 session_hk(p_sysid, e.j->'blocking_session') AS blocker_hk,
                 session_hk(p_sysid, e.j->'blocked_session') AS waiter_hk,
                 e.j->>'block_kind' AS kind
          FROM jsonb_array_elements(coalesce(p_rows, '[]')) AS e(j)) w
    CROSS JOIN LATERAL lock_blocking_hk(w.lock_hk, w.blocker_hk, w.kind) AS hk
    WHERE EXISTS (SELECT 1 FROM blocking_session_h h WHERE h.blocking_session_hk = w.blocker_hk)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$fn$;
COMMENT ON FUNCTION lock_monitoring.record_lock_waits(text, text, timestamptz, jsonb) IS
    'record_cycle part: lock_blocking_l (a waiting lock, the blocker it waits for, and how: hard or soft). Returns links added.';
GRANT EXECUTE ON FUNCTION lock_monitoring.record_lock_waits(text, text, timestamptz, jsonb) TO lock_writer_role;
