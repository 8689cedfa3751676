-- pg_stat_database.deadlocks per database: deadlock_counter_s, a row when the count changes.
-- Row: {database_name, deadlocks, hash_diff}.

CREATE OR REPLACE FUNCTION lock_monitoring.record_deadlock_counters(p_sysid text, p_src text, p_at timestamptz, p_rows jsonb)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, lock_monitoring
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
    v_cluster bytea := cluster_hk(p_sysid);
    v_n integer;
BEGIN
    WITH c AS (
        SELECT s FROM jsonb_array_elements(coalesce(p_rows, '[]')) AS e(j)
        CROSS JOIN LATERAL jsonb_populate_record(NULL::deadlock_counter_s, e.j) AS s
    ),
    ended AS (
        UPDATE deadlock_counter_s cur SET load_end_date = p_at
        FROM c
        WHERE cur.cluster_hk = v_cluster AND cur.database_name = (c.s).database_name AND cur.load_end_date IS NULL
          AND cur.hash_diff <> (c.s).hash_diff
        RETURNING cur.database_name
    )
    INSERT INTO deadlock_counter_s (cluster_hk, database_name, load_date, hash_diff, record_source, deadlocks)
    SELECT v_cluster, (s).database_name, p_at, (s).hash_diff, p_src, (s).deadlocks
    FROM c
    WHERE (s).database_name IN (SELECT database_name FROM ended)
       OR NOT EXISTS (SELECT 1 FROM deadlock_counter_s cur
                      WHERE cur.cluster_hk = v_cluster AND cur.database_name = (c.s).database_name AND cur.load_end_date IS NULL);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$fn$;
COMMENT ON FUNCTION lock_monitoring.record_deadlock_counters(text, text, timestamptz, jsonb) IS
    'record_cycle part: deadlock_counter_s (pg_stat_database.deadlocks when it changes). Returns rows added.';
GRANT EXECUTE ON FUNCTION lock_monitoring.record_deadlock_counters(text, text, timestamptz, jsonb) TO lock_writer_role;
