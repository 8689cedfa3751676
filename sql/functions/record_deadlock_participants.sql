-- Who took part in a deadlock: deadlock_involvement_l and its satellite (what each participant
-- waited for and ran). Needs the event's hub (record_deadlocks) and the session's (record_sessions).
-- Row: {deadlock_event: {database_name, event_key}, blocking_session: <session key>, hash_diff,
--       <deadlock_involvement_s columns>}.

CREATE OR REPLACE FUNCTION lock_monitoring.record_deadlock_participants(p_sysid text, p_src text, p_at timestamptz, p_rows jsonb)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, lock_monitoring
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
    v_n integer;
BEGIN
    WITH i AS (
        SELECT deadlock_involvement_hk(ev, (s).session_pid) AS hk, ev, ses, s
        FROM jsonb_array_elements(coalesce(p_rows, '[]')) AS e(j)
        CROSS JOIN LATERAL jsonb_populate_record(NULL::deadlock_involvement_s, e.j) AS s
        CROSS JOIN LATERAL deadlock_event_hk(p_sysid, e.j->'deadlock_event') AS ev
        CROSS JOIN LATERAL session_hk(p_sysid, e.j->'blocking_session') AS ses
        -- A participant whose session is unknown (it ended before it was sampled) is skipped.
        WHERE EXISTS (SELECT 1 FROM blocking_session_h h WHERE h.blocking_session_hk = ses)
    ),
    link AS (
        INSERT INTO deadlock_involvement_l (deadlock_involvement_hk, deadlock_event_hk, blocking_session_hk, load_date, record_source)
        SELECT DISTINCT ON (hk) hk, ev, ses, p_at, p_src FROM i
        ON CONFLICT DO NOTHING
    ),
    ended AS (
        UPDATE deadlock_involvement_s cur SET load_end_date = p_at
        FROM i
        WHERE cur.deadlock_involvement_hk = i.hk AND cur.load_end_date IS NULL AND cur.hash_diff <> (i.s).hash_diff
        RETURNING cur.deadlock_involvement_hk
    )
    INSERT INTO deadlock_involvement_s (deadlock_involvement_hk, load_date, hash_diff, record_source, session_pid, waits_for, blocked_by_pid, is_victim, query)
    SELECT DISTINCT ON (i.hk) i.hk, p_at, (s).hash_diff, p_src, (s).session_pid, (s).waits_for, (s).blocked_by_pid, coalesce((s).is_victim, false), (s).query
    FROM i
    WHERE i.hk IN (SELECT deadlock_involvement_hk FROM ended)
       OR NOT EXISTS (SELECT 1 FROM deadlock_involvement_s cur WHERE cur.deadlock_involvement_hk = i.hk AND cur.load_end_date IS NULL);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$fn$;
COMMENT ON FUNCTION lock_monitoring.record_deadlock_participants(text, text, timestamptz, jsonb) IS
    'record_cycle part: deadlock_involvement_l/_s. Returns participant rows added.';
GRANT EXECUTE ON FUNCTION lock_monitoring.record_deadlock_participants(text, text, timestamptz, jsonb) TO lock_writer_role;
