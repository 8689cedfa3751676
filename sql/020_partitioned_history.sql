-- Migration 020: the satellites that grow with every change are partitioned by load time
-- (declarative RANGE partitioning on load_date, one partition per UTC day, plus a DEFAULT
-- partition that takes any write for a time no partition covers yet), so retention drops
-- whole days instead of DELETEing rows (sql/functions/cleanup_old_data.sql), and partitions
-- are created ahead by the daemon (sql/functions/history_partitions.sql).
--
-- Hubs and links stay unpartitioned: their hash key is their identity (a primary key without
-- load_date) and satellites reference them. The alert trail stays too (alert_delivery_s
-- references alert_event_s by a key without load_date).
--
-- Existing vaults are converted in place, table by table, by a helper that knows nothing of
-- the tables' column types (other migrations may change them): a partitioned twin LIKE the
-- table, every row copied (counted, and the migration fails if one is missing), the table
-- swapped for its twin under the same name, its constraints, indexes, comments and privileges
-- recreated, the lockvault views on it dropped (the functions+views set, re-applied after
-- every numbered migration, recreates them). Storage options (fillfactor …) a partitioned
-- table can't hold are kept in history_partitioning and given to every partition.
-- The copy holds the tables' locks for as long as it takes: a big vault should be migrated
-- while its daemons are stopped (docs/operations.md).

CREATE TABLE IF NOT EXISTS lock_monitoring.history_partitioning (
    table_name        text PRIMARY KEY,
    keep_when         text NOT NULL,
    partition_options text[]
);
COMMENT ON TABLE lock_monitoring.history_partitioning IS
    'lockvault: the history tables partitioned by load_date (one partition a UTC day + a default), and what retention keeps of a partition it drops.';
COMMENT ON COLUMN lock_monitoring.history_partitioning.table_name IS 'A partitioned satellite of lock_monitoring.';
COMMENT ON COLUMN lock_monitoring.history_partitioning.keep_when IS
    'SQL condition on a row t of a partition older than the retention, $1 = the cutoff: rows for which it is not false are moved to the default partition before the partition is dropped (current rows, and rows still inside the retention).';
COMMENT ON COLUMN lock_monitoring.history_partitioning.partition_options IS 'Storage parameters (reloptions, e.g. fillfactor=90) given to every partition of the table.';
GRANT SELECT ON lock_monitoring.history_partitioning TO lock_monitoring_role, lock_writer_role;

INSERT INTO lock_monitoring.history_partitioning (table_name, keep_when) VALUES
    ('lock_activity_s',        't.load_end_date IS NULL OR t.load_end_date >= $1'),
    ('blocking_session_s',     't.load_end_date IS NULL OR t.load_end_date >= $1'),
    ('deadlock_event_s',       't.load_end_date IS NULL OR t.load_end_date >= $1'),
    ('deadlock_involvement_s', 't.load_end_date IS NULL OR t.load_end_date >= $1'),
    ('deadlock_counter_s',     't.load_end_date IS NULL OR t.load_end_date >= $1'),
    ('monitor_cycle_s',        't.load_end_date IS NULL OR t.load_end_date >= $1'),
    ('monitor_gap_s',          't.gap_end >= $1'),
    ('resolve_decision_s',     't.load_date >= $1 OR EXISTS (SELECT 1 FROM lock_monitoring.blocking_session_s b WHERE b.blocking_session_hk = t.blocking_session_hk AND b.load_end_date IS NULL)')
ON CONFLICT (table_name) DO NOTHING;

-- The conversion helper: lives only for this migration's session.
CREATE FUNCTION pg_temp.lv_partition_by_load_date(p_table text, p_days_ahead integer)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, lock_monitoring
AS $fn$
DECLARE
    v_old     oid := format('lock_monitoring.%I', p_table)::regclass::oid;
    v_twin    text := p_table || '__partitioned';
    v_cols    text;
    v_opts    text[];
    v_with    text := '';
    v_rows    bigint;
    v_copied  bigint;
    v_day     date;
    v_stmts   text[] := '{}';
    v_comment text;
    v_s       text;
    v_view    record;
BEGIN
    IF (SELECT relkind FROM pg_class WHERE oid = v_old) = 'p' THEN
        RETURN NULL;   -- already partitioned
    END IF;
    IF EXISTS (SELECT 1 FROM pg_constraint WHERE confrelid = v_old AND contype = 'f') THEN
        RAISE EXCEPTION 'lock_monitoring.%: another table has a foreign key to it; it can''t be partitioned', p_table;
    END IF;
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO v_cols
    FROM pg_attribute WHERE attrelid = v_old AND attnum > 0 AND NOT attisdropped AND attgenerated = '';
    SELECT reloptions INTO v_opts FROM pg_class WHERE oid = v_old;
    IF v_opts IS NOT NULL THEN
        v_with := ' WITH (' || array_to_string(v_opts, ', ') || ')';
    END IF;
    UPDATE history_partitioning SET partition_options = v_opts WHERE table_name = p_table;

    -- What to recreate on the twin, spelled while the old table still has the name.
    SELECT array_agg(format('ALTER TABLE lock_monitoring.%I ADD CONSTRAINT %I %s', p_table, conname, pg_get_constraintdef(oid))
                     ORDER BY contype = 'f', conname) INTO v_stmts
    FROM pg_constraint WHERE conrelid = v_old AND contype IN ('p', 'u', 'f', 'x');
    v_stmts := coalesce(v_stmts, '{}') || coalesce((
        SELECT array_agg(pg_get_indexdef(i.indexrelid) ORDER BY c.relname)
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = v_old AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = v_old)), '{}');
    v_stmts := v_stmts || coalesce((
        SELECT array_agg(format('COMMENT ON INDEX lock_monitoring.%I IS %L', c.relname, d.description))
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_description d ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass
        WHERE i.indrelid = v_old), '{}');
    v_stmts := v_stmts || coalesce((
        SELECT array_agg(format('GRANT %s ON lock_monitoring.%I TO %s', a.privilege_type, p_table,
                                CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END))
        FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
        WHERE c.oid = v_old AND a.grantee <> c.relowner), '{}');
    v_stmts := v_stmts || coalesce((
        SELECT array_agg(format('GRANT %s (%I) ON lock_monitoring.%I TO %s', a.privilege_type, att.attname, p_table,
                                CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END))
        FROM pg_attribute att CROSS JOIN LATERAL aclexplode(att.attacl) a
        WHERE att.attrelid = v_old AND att.attacl IS NOT NULL), '{}');
    v_comment := obj_description(v_old, 'pg_class');

    -- The twin: same columns, defaults, generated columns, CHECKs, column comments.
    EXECUTE format('CREATE TABLE lock_monitoring.%I (LIKE lock_monitoring.%I INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING CONSTRAINTS '
                   'INCLUDING COMMENTS INCLUDING STORAGE INCLUDING COMPRESSION) PARTITION BY RANGE (load_date)', v_twin, p_table);
    EXECUTE format('CREATE TABLE lock_monitoring.%I PARTITION OF lock_monitoring.%I DEFAULT%s', p_table || '_default', v_twin, v_with);
    -- A partition for every UTC day that has rows, and for yesterday up to p_days_ahead days ahead.
    FOR v_day IN EXECUTE format(
        'SELECT DISTINCT (load_date AT TIME ZONE ''UTC'')::date FROM lock_monitoring.%I '
        'UNION SELECT generate_series((now() AT TIME ZONE ''UTC'')::date - 1, (now() AT TIME ZONE ''UTC'')::date + $1, interval ''1 day'')::date '
        'ORDER BY 1', p_table) USING p_days_ahead
    LOOP
        EXECUTE format('CREATE TABLE lock_monitoring.%I PARTITION OF lock_monitoring.%I FOR VALUES FROM (%L) TO (%L)%s',
                       p_table || '_p' || to_char(v_day, 'YYYYMMDD'), v_twin,
                       (v_day::timestamp AT TIME ZONE 'UTC'), ((v_day + 1)::timestamp AT TIME ZONE 'UTC'), v_with);
    END LOOP;

    EXECUTE format('SELECT count(*) FROM lock_monitoring.%I', p_table) INTO v_rows;
    EXECUTE format('INSERT INTO lock_monitoring.%I (%s) SELECT %s FROM lock_monitoring.%I', v_twin, v_cols, v_cols, p_table);
    GET DIAGNOSTICS v_copied = ROW_COUNT;
    IF v_copied <> v_rows THEN
        RAISE EXCEPTION 'lock_monitoring.%: copied % of % rows into the partitioned table', p_table, v_copied, v_rows;
    END IF;

    -- lockvault's views on it go (the repeatable set recreates them); anyone else's view on it
    -- makes DROP TABLE fail, by name, and the migration roll back.
    FOR v_view IN
        WITH RECURSIVE dep(oid, depth) AS (
            SELECT DISTINCT r.ev_class, 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
            WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = v_old AND r.ev_class <> v_old
            UNION
            SELECT r.ev_class, dep.depth + 1 FROM dep JOIN pg_depend d ON d.refobjid = dep.oid AND d.classid = 'pg_rewrite'::regclass
            JOIN pg_rewrite r ON r.oid = d.objid WHERE r.ev_class <> dep.oid)
        SELECT c.oid::regclass AS v, max(depth) AS depth FROM dep JOIN pg_class c ON c.oid = dep.oid
        WHERE c.relnamespace = 'lock_monitoring'::regnamespace AND c.relkind IN ('v', 'm')
        GROUP BY c.oid ORDER BY max(depth) DESC
    LOOP
        EXECUTE format('DROP VIEW IF EXISTS %s', v_view.v);
    END LOOP;
    EXECUTE format('DROP TABLE lock_monitoring.%I', p_table);
    EXECUTE format('ALTER TABLE lock_monitoring.%I RENAME TO %I', v_twin, p_table);
    FOREACH v_s IN ARRAY v_stmts LOOP
        EXECUTE v_s;
    END LOOP;
    IF v_comment IS NOT NULL THEN
        EXECUTE format('COMMENT ON TABLE lock_monitoring.%I IS %L', p_table, v_comment);
    END IF;
    RETURN v_copied;
END
$fn$;

SELECT pg_temp.lv_partition_by_load_date(table_name, 7) FROM lock_monitoring.history_partitioning ORDER BY table_name;

DROP FUNCTION pg_temp.lv_partition_by_load_date(text, integer);
