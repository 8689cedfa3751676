-- Blockers: blocking_session_s, a row per change of a blocker's state. Which current rows end
-- (it stopped blocking, or changed): with p_ended NULL (a whole cycle), every blocker of this
-- cluster not seen again unchanged; with p_ended an array of session keys (only what changed
-- since the daemon's last write), exactly those, and the changed ones.
-- Row: {blocking_session: <session key>, hash_diff, <blocking_session_s columns>}.

-- Before p_ended.
DROP FUNCTION IF EXISTS lock_monitoring.record_blockers(text, text, timestamptz, jsonb);

CREATE OR REPLACE FUNCTION lock_monitoring.record_blockers(p_sysid text, p_src text, p_at timestamptz, p_rows jsonb, p_ended jsonb DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, lock_monitoring
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
    v_stats jsonb;
BEGIN
    -- The history has no foreign keys (migration 023): a blocker whose session has no hub
    -- (record_sessions writes one for every session the cycle names) is refused, as the key did.
    IF EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(p_rows, '[]')) AS e(j)
               WHERE NOT EXISTS (SELECT 1 FROM blocking_session_h h WHERE h.blocking_session_hk = session_hk(p_sysid, e.j->'blocking_session'))) THEN
        RAISE EXCEPTION 'record_blockers: a blocker''s session has no hub in blocking_session_h (name it in the cycle''s sessions)'
            USING ERRCODE = '23503';
    END IF;
    WITH b AS (
        SELECT session_hk(p_sysid, e.j->'blocking_session') AS hk, s
        FROM jsonb_array_elements(coalesce(p_rows, '[]')) AS e(j)
        CROSS JOIN LATERAL jsonb_populate_record(NULL::blocking_session_s, e.j) AS s
    ),
    ended_all AS (
        UPDATE blocking_session_s cur SET load_end_date = p_at
        FROM blocking_session_h h
        WHERE p_ended IS NULL
          AND h.blocking_session_hk = cur.blocking_session_hk AND h.system_identifier = p_sysid AND cur.load_end_date IS NULL
          AND NOT EXISTS (SELECT 1 FROM b WHERE b.hk = cur.blocking_session_hk AND (b.s).hash_diff = cur.hash_diff)
        RETURNING cur.blocking_session_hk
    ),
    ended_listed AS (
        UPDATE blocking_session_s cur SET load_end_date = p_at
        WHERE p_ended IS NOT NULL AND cur.load_end_date IS NULL
          -- The keys as one array, computed once (ARRAY(subquery), an InitPlan): the current-row index of every
          -- partition is probed with = ANY. (An IN (subquery) here was planned as a nested loop
          -- that re-hashed every listed key for every current row of the cluster.)
          AND cur.blocking_session_hk = ANY (ARRAY(SELECT k.hk FROM (SELECT session_hk(p_sysid, g.j) AS hk FROM jsonb_array_elements(p_ended) AS g(j)
                                                      UNION ALL SELECT b.hk FROM b) AS k))
          AND NOT EXISTS (SELECT 1 FROM b WHERE b.hk = cur.blocking_session_hk AND (b.s).hash_diff = cur.hash_diff)
        RETURNING cur.blocking_session_hk
    ),
    ended AS (SELECT blocking_session_hk FROM ended_all UNION ALL SELECT blocking_session_hk FROM ended_listed),
    added AS (
        INSERT INTO blocking_session_s (blocking_session_hk, load_date, hash_diff, record_source, session_pid, prepared_gid, user_name,
                                        application_name, database_name, client_addr, backend_type, session_state, is_superuser,
                                        blocked_sessions_count, directly_blocked_count, blocked_pids, blocking_started, blocking_severity,
                                        held_lock_mode, lock_target, relation_name, is_root_blocker, in_deadlock_cycle, recommended_action,
                                        auto_kill_eligible, auto_kill_reason, kill_threshold_seconds, xact_start, query, blocks_as, queued_for_mode)
        SELECT DISTINCT ON (b.hk) b.hk, p_at, (s).hash_diff, p_src, (s).session_pid, (s).prepared_gid, (s).user_name,
               (s).application_name, (s).database_name, (s).client_addr, (s).backend_type, (s).session_state, coalesce((s).is_superuser, false),
               (s).blocked_sessions_count, (s).directly_blocked_count, (s).blocked_pids, (s).blocking_started, (s).blocking_severity,
               (s).held_lock_mode, (s).lock_target, (s).relation_name, (s).is_root_blocker, coalesce((s).in_deadlock_cycle, false), (s).recommended_action,
               (s).auto_kill_eligible, (s).auto_kill_reason, (s).kill_threshold_seconds, (s).xact_start, (s).query, (s).blocks_as, (s).queued_for_mode
        FROM b
        WHERE b.hk IN (SELECT blocking_session_hk FROM ended)
           OR NOT EXISTS (SELECT 1 FROM blocking_session_s cur WHERE cur.blocking_session_hk = b.hk AND cur.load_end_date IS NULL)
        RETURNING 1
    )
    SELECT jsonb_build_object('blockers_ended', (SELECT count(*) FROM ended), 'blocker_rows', (SELECT count(*) FROM added)) INTO v_stats;
    RETURN v_stats;
END
$fn$;
COMMENT ON FUNCTION lock_monitoring.record_blockers(text, text, timestamptz, jsonb, jsonb) IS
    'record_cycle part: blocking_session_s. p_ended NULL: p_rows is every current blocker of the cluster; else the session keys that ended. Returns {blockers_ended, blocker_rows}.';
GRANT EXECUTE ON FUNCTION lock_monitoring.record_blockers(text, text, timestamptz, jsonb, jsonb) TO lock_writer_role;
