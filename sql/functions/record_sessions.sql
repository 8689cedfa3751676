-- Sessions: every session or prepared transaction named anywhere in a cycle gets its hub row
-- (blocking_session_h), so blockers, waits, deadlocks and decisions can refer to it.
-- Row: {blocking_session: {session_kind, session_pid, session_start, prepared_gid}, database_name}.

CREATE OR REPLACE FUNCTION lock_monitoring.record_sessions(p_sysid text, p_src text, p_at timestamptz, p_rows jsonb)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, lock_monitoring
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
    v_n integer;
BEGIN
    INSERT INTO blocking_session_h (blocking_session_hk, tenant_hk, system_identifier, session_kind, session_pid, session_start, prepared_gid,
                                    load_date, record_source)
    SELECT DISTINCT ON (hk) hk, tenant_hk(e.j->>'database_name'), p_sysid, k.session_kind, k.session_pid, k.session_start, k.prepared_gid, p_at, p_src
    FROM jsonb_array_elements(coalesce(p_rows, '[]')) AS e(j)
    CROSS JOIN LATERAL jsonb_populate_record(NULL::blocking_session_h, e.j->'blocking_session') AS k
    CROSS JOIN LATERAL session_hk(p_sysid, e.j->'blocking_session') AS hk
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$fn$;
COMMENT ON FUNCTION lock_monitoring.record_sessions(text, text, timestamptz, jsonb) IS
    'record_cycle part: hub rows (blocking_session_h) for every session named in the cycle. Returns hubs added.';
GRANT EXECUTE ON FUNCTION lock_monitoring.record_sessions(text, text, timestamptz, jsonb) TO lock_writer_role;
