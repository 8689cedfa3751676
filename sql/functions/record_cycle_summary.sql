-- The cycle summary: monitor_cycle_s, a row when it changes, else a heartbeat at most every
-- heartbeat_seconds — enough for `lockvault status` and lag without WAL every second.
-- Row (one): {hash_diff, <monitor_cycle_s columns>}; last_cycle_at is the cycle's captured_at.
-- The blockers by severity (critical/high/medium/low_blockers) are in the hash diff: a change of
-- a blocker's severity writes a summary row, so the current one always has the current counts.

CREATE OR REPLACE FUNCTION lock_monitoring.record_cycle_summary(p_sysid text, p_src text, p_at timestamptz, p_heartbeat_seconds double precision,
                                                                p_summary jsonb)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, lock_monitoring
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
    v_cluster bytea := cluster_hk(p_sysid);
    v_sum monitor_cycle_s;
    v_cur record;
    v_n integer;
BEGIN
    IF p_summary IS NULL OR jsonb_typeof(p_summary) <> 'object' THEN
        RETURN 0;
    END IF;
    v_sum := jsonb_populate_record(NULL::monitor_cycle_s, p_summary);
    SELECT load_date, hash_diff, last_cycle_at INTO v_cur FROM monitor_cycle_s
    WHERE cluster_hk = v_cluster AND load_end_date IS NULL;
    IF FOUND AND v_cur.hash_diff = v_sum.hash_diff AND v_cur.last_cycle_at >= p_at - make_interval(secs => p_heartbeat_seconds) THEN
        RETURN 0;
    END IF;
    UPDATE monitor_cycle_s SET load_end_date = p_at WHERE cluster_hk = v_cluster AND load_end_date IS NULL AND load_date < p_at;
    INSERT INTO monitor_cycle_s (cluster_hk, load_date, hash_diff, record_source, cluster_name, last_cycle_at, cycle_ms, backends,
                                 waiting_sessions, blockers, critical_blockers, locks_captured, locks_in_use, lock_table_capacity,
                                 server_version_num, daemon_version, buffered_cycles, spooled_cycles, high_blockers, medium_blockers, low_blockers,
                                 short_waits, longest_wait_seconds)
    VALUES (v_cluster, p_at, v_sum.hash_diff, p_src, v_sum.cluster_name, p_at, v_sum.cycle_ms, v_sum.backends,
            v_sum.waiting_sessions, v_sum.blockers, v_sum.critical_blockers, v_sum.locks_captured, v_sum.locks_in_use, v_sum.lock_table_capacity,
            v_sum.server_version_num, v_sum.daemon_version, v_sum.buffered_cycles, v_sum.spooled_cycles,
            v_sum.high_blockers, v_sum.medium_blockers, v_sum.low_blockers, v_sum.short_waits, v_sum.longest_wait_seconds)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$fn$;
COMMENT ON FUNCTION lock_monitoring.record_cycle_summary(text, text, timestamptz, double precision, jsonb) IS
    'record_cycle part: monitor_cycle_s (summary on change, heartbeat otherwise). Returns rows added (0 or 1).';
GRANT EXECUTE ON FUNCTION lock_monitoring.record_cycle_summary(text, text, timestamptz, double precision, jsonb) TO lock_writer_role;
