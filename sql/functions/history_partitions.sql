-- Partitions of the history tables (migration 020: one per UTC day of load_date, plus a
-- default; for the state satellites, of their closed rows, <table>_ended, since migration
-- 030 keeps the current rows in <table>_current; the point events by day alone, migration
-- 032; the alert trail by day of event_at, migration 032): which exist, and creating them ahead. The daemon calls
-- ensure_history_partitions() at start and every hour, so a day's partition exists before its
-- first write; a write for a day without one (the daemon was stopped for a week, a clock far
-- ahead, `lockvault sample` from cron) lands in the default partition and is moved into the
-- day's partition when that is created. Nothing is lost either way.
-- SECURITY DEFINER: creating a partition needs the tables' owner; the daemon's role may only
-- run these functions.

-- The ranges alone (no sizes: reading every partition's size costs more than the rest of a
-- retention run that drops nothing): what create_history_partitions and cleanup_old_data ask.
CREATE OR REPLACE FUNCTION lock_monitoring.history_partition_ranges(p_table text DEFAULT NULL)
RETURNS TABLE (table_name text, partition_oid oid, partition_name text, is_default boolean, range_start timestamptz, range_end timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, lock_monitoring
AS $fn$
    SELECT hp.table_name, c.oid, c.relname::text, b.bound = 'DEFAULT',
           (regexp_match(b.bound, 'FROM \(''([^'']+)''\)'))[1]::timestamptz,
           (regexp_match(b.bound, 'TO \(''([^'']+)''\)'))[1]::timestamptz
    FROM history_partitioning hp
    JOIN pg_inherits i ON i.inhparent = format('lock_monitoring.%I', hp.range_table)::regclass
    JOIN pg_class c ON c.oid = i.inhrelid
    CROSS JOIN LATERAL (SELECT pg_get_expr(c.relpartbound, c.oid) AS bound) b
    WHERE p_table IS NULL OR hp.table_name = p_table
$fn$;
COMMENT ON FUNCTION lock_monitoring.history_partition_ranges(text) IS
    'The partitions of the partitioned history tables (all, or of one) and their ranges of history_partitioning.partition_column (load_date; event_at for the alert trail), NULL for the default partition, without sizes: history_partitions() adds them.';
REVOKE ALL ON FUNCTION lock_monitoring.history_partition_ranges(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lock_monitoring.history_partition_ranges(text) TO lock_monitoring_role, lock_writer_role;

CREATE OR REPLACE FUNCTION lock_monitoring.history_partitions(p_table text DEFAULT NULL)
RETURNS TABLE (table_name text, partition_name text, is_default boolean, range_start timestamptz, range_end timestamptz,
               estimated_rows bigint, total_bytes bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, lock_monitoring
AS $fn$
    SELECT r.table_name, r.partition_name, r.is_default, r.range_start, r.range_end,
           greatest(c.reltuples, 0)::bigint, pg_total_relation_size(c.oid)
    FROM history_partition_ranges(p_table) r
    JOIN pg_class c ON c.oid = r.partition_oid
    ORDER BY 1, 4 NULLS FIRST
$fn$;
COMMENT ON FUNCTION lock_monitoring.history_partitions(text) IS
    'The partitions of the partitioned history tables (all, or of one): range of load_date (event_at for the alert trail), or the default partition; estimated rows and bytes.';
REVOKE ALL ON FUNCTION lock_monitoring.history_partitions(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lock_monitoring.history_partitions(text) TO lock_monitoring_role, lock_writer_role;

CREATE OR REPLACE FUNCTION lock_monitoring.create_history_partitions(p_from date, p_to date)
RETURNS TABLE (table_name text, partition_name text, rows_moved bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, lock_monitoring, pg_temp
AS $fn$
DECLARE
    v_t    record;
    v_day  date;
    v_lo   timestamptz;
    v_hi   timestamptz;
    v_name text;
    v_cols text;
    v_with text;
    v_n    bigint;
BEGIN
    IF p_from IS NULL OR p_to IS NULL OR p_to - p_from > 3660 THEN
        RAISE EXCEPTION 'create_history_partitions: from and to are required and at most 3660 days apart' USING ERRCODE = '22023';
    END IF;
    -- Every daemon of a fleet runs this: one at a time (and never beside cleanup_old_data).
    PERFORM pg_advisory_xact_lock(hashtext('lock_monitoring history partitions'));
    FOR v_t IN SELECT hp.table_name, hp.range_table, hp.partition_options, hp.partition_column FROM history_partitioning hp ORDER BY hp.table_name LOOP
        v_with := CASE WHEN v_t.partition_options IS NULL THEN '' ELSE ' WITH (' || array_to_string(v_t.partition_options, ', ') || ')' END;
        SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO v_cols
        FROM pg_attribute WHERE attrelid = format('lock_monitoring.%I', v_t.table_name)::regclass
          AND attnum > 0 AND NOT attisdropped AND attgenerated = '';
        v_day := p_from;
        WHILE v_day < p_to LOOP
            v_lo := v_day::timestamp AT TIME ZONE 'UTC';
            v_hi := (v_day + 1)::timestamp AT TIME ZONE 'UTC';
            -- Skip a day that any partition (of whatever range) already covers, even in part.
            IF NOT EXISTS (SELECT 1 FROM history_partition_ranges(v_t.table_name) p
                           WHERE NOT p.is_default AND p.range_start < v_hi AND p.range_end > v_lo) THEN
                v_name := v_t.range_table || '_p' || to_char(v_day, 'YYYYMMDD');
                -- Rows the default partition took for this day move into the new partition.
                EXECUTE format('SELECT count(*) FROM lock_monitoring.%I WHERE %I >= $1 AND %I < $2',
                               v_t.range_table || '_default', v_t.partition_column, v_t.partition_column) INTO v_n USING v_lo, v_hi;
                IF v_n = 0 THEN
                    EXECUTE format('CREATE TABLE lock_monitoring.%I PARTITION OF lock_monitoring.%I FOR VALUES FROM (%L) TO (%L)%s',
                                   v_name, v_t.range_table, v_lo, v_hi, v_with);
                ELSE
                    -- Rows the default partition took for this day move into the new partition
                    -- (it can't be created while the default holds rows of its range).
                    EXECUTE format('CREATE TEMP TABLE lv_moving ON COMMIT DROP AS SELECT %s FROM lock_monitoring.%I WITH NO DATA', v_cols, v_t.table_name);
                    EXECUTE format('WITH d AS (DELETE FROM lock_monitoring.%I WHERE %I >= $1 AND %I < $2 RETURNING %s) '
                                   'INSERT INTO pg_temp.lv_moving SELECT * FROM d', v_t.range_table || '_default', v_t.partition_column, v_t.partition_column, v_cols)
                        USING v_lo, v_hi;
                    GET DIAGNOSTICS v_n = ROW_COUNT;
                    EXECUTE format('CREATE TABLE lock_monitoring.%I PARTITION OF lock_monitoring.%I FOR VALUES FROM (%L) TO (%L)%s',
                                   v_name, v_t.range_table, v_lo, v_hi, v_with);
                    EXECUTE format('INSERT INTO lock_monitoring.%I (%s) SELECT %s FROM pg_temp.lv_moving', v_t.table_name, v_cols, v_cols);
                    DROP TABLE pg_temp.lv_moving;
                END IF;
                table_name := v_t.table_name; partition_name := v_name; rows_moved := v_n;
                RETURN NEXT;
            END IF;
            v_day := v_day + 1;
        END LOOP;
    END LOOP;
END
$fn$;
COMMENT ON FUNCTION lock_monitoring.create_history_partitions(date, date) IS
    'Creates the missing daily partitions of every partitioned history table for the UTC days from p_from up to (not including) p_to, moving rows the default partition holds for those days into them. Returns what it created.';
REVOKE ALL ON FUNCTION lock_monitoring.create_history_partitions(date, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lock_monitoring.create_history_partitions(date, date) TO lock_writer_role;

CREATE OR REPLACE FUNCTION lock_monitoring.ensure_history_partitions(days_ahead integer DEFAULT 7)
RETURNS TABLE (table_name text, partition_name text, rows_moved bigint)
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, lock_monitoring
AS $fn$
    SELECT * FROM create_history_partitions((now() AT TIME ZONE 'UTC')::date - 1, (now() AT TIME ZONE 'UTC')::date + greatest(days_ahead, 1) + 1)
$fn$;
COMMENT ON FUNCTION lock_monitoring.ensure_history_partitions(integer) IS
    'Creates the daily partitions from yesterday to days_ahead days ahead (UTC) that are missing; the daemon runs it at start and hourly. Returns what it created.';
REVOKE ALL ON FUNCTION lock_monitoring.ensure_history_partitions(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lock_monitoring.ensure_history_partitions(integer) TO lock_writer_role;
