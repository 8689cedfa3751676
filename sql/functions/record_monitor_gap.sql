-- A period lockvault did not observe the cluster: monitor_gap_s (an event, never superseded).
-- Row (one, optional): {gap_start, gap_end, reason, hash_diff}.

CREATE OR REPLACE FUNCTION lock_monitoring.record_monitor_gap(p_sysid text, p_src text, p_gap jsonb)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, lock_monitoring
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
    v_n integer;
BEGIN
    IF p_gap IS NULL OR jsonb_typeof(p_gap) <> 'object' THEN
        RETURN 0;
    END IF;
    INSERT INTO monitor_gap_s (cluster_hk, load_date, hash_diff, record_source, gap_start, gap_end, reason)
    SELECT cluster_hk(p_sysid), (s).gap_start, (s).hash_diff, p_src, (s).gap_start, (s).gap_end, (s).reason
    FROM jsonb_populate_record(NULL::monitor_gap_s, p_gap) AS s
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$fn$;
COMMENT ON FUNCTION lock_monitoring.record_monitor_gap(text, text, jsonb) IS
    'record_cycle part: monitor_gap_s (a period with no observations). Returns rows added (0 or 1).';
GRANT EXECUTE ON FUNCTION lock_monitoring.record_monitor_gap(text, text, jsonb) TO lock_writer_role;
