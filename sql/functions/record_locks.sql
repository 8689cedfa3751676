-- Locks: lock_activity_h (one per holder x target x mode) and its satellite. A changed lock
-- gets a new row. Which current rows end: with p_ended NULL (a whole cycle), every lock of
-- this cluster not seen again unchanged; with p_ended an array of lock keys (the daemon sends
-- only what changed since its last write), exactly those, and the changed ones.
-- Row: {lock_activity: {holder_kind, session_pid, session_start, prepared_gid, lock_type, database_oid,
--       lock_target_key, lock_mode}, hash_diff, <lock_activity_s columns>}.

-- Before p_ended.
DROP FUNCTION IF EXISTS lock_monitoring.record_locks(text, text, timestamptz, jsonb);

CREATE OR REPLACE FUNCTION lock_monitoring.record_locks(p_sysid text, p_src text, p_at timestamptz, p_rows jsonb, p_ended jsonb DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, lock_monitoring
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
    v_stats jsonb;
BEGIN
    WITH l AS (
        SELECT lock_hk(p_sysid, e.j->'lock_activity') AS hk, k, s
        FROM jsonb_array_elements(coalesce(p_rows, '[]')) AS e(j)
        CROSS JOIN LATERAL jsonb_populate_record(NULL::lock_activity_h, e.j->'lock_activity') AS k
        CROSS JOIN LATERAL jsonb_populate_record(NULL::lock_activity_s, e.j) AS s
    ),
    hub AS (
        INSERT INTO lock_activity_h (lock_activity_hk, tenant_hk, system_identifier, holder_kind, session_pid, session_start, prepared_gid,
                                     lock_type, database_oid, lock_target_key, lock_mode, load_date, record_source)
        SELECT DISTINCT ON (hk) hk, tenant_hk((s).database_name), p_sysid, (k).holder_kind, (k).session_pid, (k).session_start, (k).prepared_gid,
               (k).lock_type, (k).database_oid, (k).lock_target_key, (k).lock_mode, p_at, p_src
        FROM l
        ON CONFLICT DO NOTHING
    ),
    ended_all AS (
        UPDATE lock_activity_s cur SET load_end_date = p_at
        FROM lock_activity_h h
        WHERE p_ended IS NULL
          AND h.lock_activity_hk = cur.lock_activity_hk AND h.system_identifier = p_sysid AND cur.load_end_date IS NULL
          AND NOT EXISTS (SELECT 1 FROM l WHERE l.hk = cur.lock_activity_hk AND (l.s).hash_diff = cur.hash_diff)
        RETURNING cur.lock_activity_hk
    ),
    ended_listed AS (
        UPDATE lock_activity_s cur SET load_end_date = p_at
        WHERE p_ended IS NOT NULL AND cur.load_end_date IS NULL
          -- The keys as one array, computed once (ARRAY(subquery), an InitPlan): the current-row index of every
          -- partition is probed with = ANY. (An IN (subquery) here was planned as a nested loop
          -- that re-hashed every listed key for every current row of the cluster.)
          AND cur.lock_activity_hk = ANY (ARRAY(SELECT k.hk FROM (SELECT lock_hk(p_sysid, g.j) AS hk FROM jsonb_array_elements(p_ended) AS g(j)
                                                      UNION ALL SELECT l.hk FROM l) AS k))
          AND NOT EXISTS (SELECT 1 FROM l WHERE l.hk = cur.lock_activity_hk AND (l.s).hash_diff = cur.hash_diff)
        RETURNING cur.lock_activity_hk
    ),
    ended AS (SELECT lock_activity_hk FROM ended_all UNION ALL SELECT lock_activity_hk FROM ended_listed),
    added AS (
        INSERT INTO lock_activity_s (lock_activity_hk, load_date, hash_diff, record_source, lock_type, lock_mode, lock_granted, database_name,
                                     relation_name, lock_target, advisory_key, wait_start, lock_since, blocking_pid, block_kind, blocked_by_pids, session_pid,
                                     user_name, application_name, client_addr, session_state, query)
        SELECT DISTINCT ON (l.hk) l.hk, p_at, (s).hash_diff, p_src, (s).lock_type, (s).lock_mode, (s).lock_granted, (s).database_name,
               (s).relation_name, (s).lock_target, (s).advisory_key, (s).wait_start, coalesce((s).lock_since, p_at), (s).blocking_pid, (s).block_kind,
               (s).blocked_by_pids, (s).session_pid, (s).user_name, (s).application_name, (s).client_addr, (s).session_state, (s).query
        FROM l
        WHERE l.hk IN (SELECT lock_activity_hk FROM ended)
           OR NOT EXISTS (SELECT 1 FROM lock_activity_s cur WHERE cur.lock_activity_hk = l.hk AND cur.load_end_date IS NULL)
        RETURNING 1
    )
    SELECT jsonb_build_object('locks_ended', (SELECT count(*) FROM ended), 'lock_rows', (SELECT count(*) FROM added)) INTO v_stats;
    RETURN v_stats;
END
$fn$;
COMMENT ON FUNCTION lock_monitoring.record_locks(text, text, timestamptz, jsonb, jsonb) IS
    'record_cycle part: lock_activity_h/_s. p_ended NULL: p_rows is every current lock of the cluster; else the lock keys that ended. Returns {locks_ended, lock_rows}.';
GRANT EXECUTE ON FUNCTION lock_monitoring.record_locks(text, text, timestamptz, jsonb, jsonb) TO lock_writer_role;
