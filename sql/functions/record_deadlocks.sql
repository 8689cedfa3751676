-- Deadlocks: deadlock_event_h (one per deadlock) and its satellite, a new row when a later
-- source adds detail. Events are not end-dated when a cycle no longer mentions them.
-- Row: {deadlock_event: {database_name, event_key}, hash_diff, <deadlock_event_s columns>}.

CREATE OR REPLACE FUNCTION lock_monitoring.record_deadlocks(p_sysid text, p_src text, p_at timestamptz, p_rows jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, lock_monitoring
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
    v_n integer;
BEGIN
    WITH d AS (
        SELECT deadlock_event_hk(p_sysid, e.j->'deadlock_event') AS hk, k, s
        FROM jsonb_array_elements(coalesce(p_rows, '[]')) AS e(j)
        CROSS JOIN LATERAL jsonb_populate_record(NULL::deadlock_event_h, e.j->'deadlock_event') AS k
        CROSS JOIN LATERAL jsonb_populate_record(NULL::deadlock_event_s, e.j) AS s
    ),
    hub AS (
        INSERT INTO deadlock_event_h (deadlock_event_hk, tenant_hk, system_identifier, database_name, event_key, load_date, record_source)
        SELECT DISTINCT ON (hk) hk, tenant_hk((k).database_name), p_sysid, (k).database_name, (k).event_key, p_at, p_src
        FROM d
        ON CONFLICT DO NOTHING
    ),
    ended AS (
        UPDATE deadlock_event_s cur SET load_end_date = p_at
        FROM d
        WHERE cur.deadlock_event_hk = d.hk AND cur.load_end_date IS NULL AND cur.hash_diff <> (d.s).hash_diff
        RETURNING cur.deadlock_event_hk
    )
    INSERT INTO deadlock_event_s (deadlock_event_hk, load_date, hash_diff, record_source, detected_at, database_name, sources, participant_count,
                                  participant_pids, victim_pid, details)
    SELECT DISTINCT ON (d.hk) d.hk, p_at, (s).hash_diff, p_src, (s).detected_at, (s).database_name, (s).sources,
           coalesce(array_length((s).participant_pids, 1), 0), coalesce((s).participant_pids, '{}'), (s).victim_pid, (s).details
    FROM d
    WHERE d.hk IN (SELECT deadlock_event_hk FROM ended)
       OR NOT EXISTS (SELECT 1 FROM deadlock_event_s cur WHERE cur.deadlock_event_hk = d.hk AND cur.load_end_date IS NULL);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN jsonb_build_object('deadlock_rows', v_n);
END
$fn$;
COMMENT ON FUNCTION lock_monitoring.record_deadlocks(text, text, timestamptz, jsonb) IS
    'record_cycle part: deadlock_event_h/_s. Returns {deadlock_rows}.';
GRANT EXECUTE ON FUNCTION lock_monitoring.record_deadlocks(text, text, timestamptz, jsonb) TO lock_writer_role;
