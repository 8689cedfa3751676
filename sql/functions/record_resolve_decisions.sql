-- Resolve decisions: resolve_decision_s, the audit trail of every decision about a blocker
-- (events: inserted, never superseded). load_date is when it was decided.
-- Row: {blocking_session: <session key>, hash_diff, load_date, <resolve_decision_s columns>}.

CREATE OR REPLACE FUNCTION lock_monitoring.record_resolve_decisions(p_sysid text, p_src text, p_at timestamptz, p_rows jsonb)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, lock_monitoring
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
    v_n integer;
BEGIN
    INSERT INTO resolve_decision_s (blocking_session_hk, load_date, hash_diff, record_source, decision, reason, dry_run, action, outcome, severity,
                                    blocked_sessions_count, blocking_seconds, decided_by)
    SELECT hk, coalesce((s).load_date, p_at), (s).hash_diff, p_src, (s).decision, (s).reason, (s).dry_run, (s).action, (s).outcome, (s).severity,
           (s).blocked_sessions_count, (s).blocking_seconds, (s).decided_by
    FROM jsonb_array_elements(coalesce(p_rows, '[]')) AS e(j)
    CROSS JOIN LATERAL jsonb_populate_record(NULL::resolve_decision_s, e.j) AS s
    CROSS JOIN LATERAL session_hk(p_sysid, e.j->'blocking_session') AS hk
    WHERE EXISTS (SELECT 1 FROM blocking_session_h h WHERE h.blocking_session_hk = hk)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$fn$;
COMMENT ON FUNCTION lock_monitoring.record_resolve_decisions(text, text, timestamptz, jsonb) IS
    'record_cycle part: resolve_decision_s (every resolve decision, acted on or not). Returns decisions added.';
GRANT EXECUTE ON FUNCTION lock_monitoring.record_resolve_decisions(text, text, timestamptz, jsonb) TO lock_writer_role;
