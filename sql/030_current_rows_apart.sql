-- Migration 030: the current rows of every end-dated satellite live in a partition of their own.
--
-- Why: every write asks for a cluster's current rows (load_end_date IS NULL), and a current row
-- could be in any day's partition (migration 020 partitioned by load_date), so each such
-- statement opened every daily partition and its indexes: some hundreds of relation locks per
-- write, beyond the 16 fast-path slots of a backend, and at 200 clusters writing into one vault
-- the writers queued on the lock manager (docs/benchmarks.md, part 7). Now:
--
--   lock_activity_s                      PARTITION BY LIST (load_end_date)
--     lock_activity_s_current              FOR VALUES IN (NULL): the current rows, however old
--     lock_activity_s_ended                DEFAULT, PARTITION BY RANGE (load_date): closed rows
--       lock_activity_s_ended_pYYYYMMDD      one a UTC day, as migration 020 made them
--       lock_activity_s_ended_default        writes for a day no partition covers yet
--
-- A statement on current rows is pruned to the current partition when it is planned; ending a
-- row moves it (UPDATE of the partition key) into its day's partition. Retention drops whole
-- days of the ended tree, which never holds a current row. history_partitioning.range_table
-- names the table whose children are the days (the ended tree here, the table itself for
-- monitor_gap_s and resolve_decision_s, which have no end date).
--
-- Existing vaults are converted in place, without copying the history: the partitioned table
-- is renamed to <table>_ended (its day partitions and default with it), its current rows are
-- moved into the new current partition, and it is attached to the new table under the old
-- name as the default partition. The primary key stays on both partitions (a key of the
-- parent would have to contain load_end_date, which a current row leaves NULL); the indexes
-- on current rows only move to the current partition; lockvault's views on the table are
-- dropped (the functions+views set, re-applied after every numbered migration, recreates
-- them); anyone else's view on it stops the migration, by name.

ALTER TABLE lock_monitoring.history_partitioning ADD COLUMN IF NOT EXISTS range_table text;
UPDATE lock_monitoring.history_partitioning SET range_table = table_name WHERE range_table IS NULL;
ALTER TABLE lock_monitoring.history_partitioning ALTER COLUMN range_table SET NOT NULL;
COMMENT ON COLUMN lock_monitoring.history_partitioning.range_table IS
    'The table whose partitions are the UTC days: <table>_ended for the end-dated satellites (their current rows are in <table>_current, migration 030), the table itself otherwise.';

CREATE FUNCTION pg_temp.lv_current_apart(p_table text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, lock_monitoring
AS $fn$
DECLARE
    v_old      oid := format('lock_monitoring.%I', p_table)::regclass::oid;
    v_ended    text := p_table || '_ended';
    v_current  text := p_table || '_current';
    v_cols     text;
    v_opts     text[];
    v_with     text := '';
    v_before   bigint;
    v_after    bigint;
    v_moved    bigint;
    v_stmts    text[] := '{}';
    v_comment  text;
    v_s        text;
    v_name     text;
    v_r        record;
BEGIN
    IF (SELECT partstrat FROM pg_partitioned_table WHERE partrelid = v_old) = 'l' THEN
        RETURN NULL;   -- already converted
    END IF;
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO v_cols
    FROM pg_attribute WHERE attrelid = v_old AND attnum > 0 AND NOT attisdropped AND attgenerated = '';
    SELECT partition_options INTO v_opts FROM history_partitioning WHERE table_name = p_table;
    EXECUTE format('SELECT count(*) FROM lock_monitoring.%I', p_table) INTO v_before;

    -- lockvault's views on it go (they would follow the rename); anyone else's stop the migration.
    FOR v_r IN
        WITH RECURSIVE dep(oid, depth) AS (
            SELECT DISTINCT r.ev_class, 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
            WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = v_old AND r.ev_class <> v_old
            UNION
            SELECT r.ev_class, dep.depth + 1 FROM dep JOIN pg_depend d ON d.refobjid = dep.oid AND d.classid = 'pg_rewrite'::regclass
            JOIN pg_rewrite r ON r.oid = d.objid WHERE r.ev_class <> dep.oid)
        SELECT c.oid::regclass AS v, c.relnamespace = 'lock_monitoring'::regnamespace AS ours, max(depth) AS depth
        FROM dep JOIN pg_class c ON c.oid = dep.oid
        WHERE c.relkind IN ('v', 'm')
        GROUP BY c.oid ORDER BY max(depth) DESC
    LOOP
        IF NOT v_r.ours THEN
            RAISE EXCEPTION 'lock_monitoring.%: the view % depends on it; drop it, migrate, then create it again', p_table, v_r.v;
        END IF;
        EXECUTE format('DROP VIEW IF EXISTS %s', v_r.v);
    END LOOP;

    -- Spelled while the old table still has the name: its privileges and comment, for the new one.
    v_stmts := coalesce((
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

    -- The old table becomes the ended tree: it and its partitions and indexes get the _ended names.
    EXECUTE format('ALTER TABLE lock_monitoring.%I RENAME TO %I', p_table, v_ended);
    FOR v_r IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = v_old LOOP
        EXECUTE format('ALTER TABLE lock_monitoring.%I RENAME TO %I', v_r.relname,
                       v_ended || substr(v_r.relname, length(p_table) + 1));
    END LOOP;
    -- Indexes on current rows only are empty in the ended tree: they are made again on the current partition.
    FOR v_r IN SELECT c.relname, pg_get_indexdef(i.indexrelid) AS def,
                      pg_get_expr(i.indpred, i.indrelid) IS NOT DISTINCT FROM '(load_end_date IS NULL)' AS current_only,
                      obj_description(i.indexrelid, 'pg_class') AS comment
               FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
               WHERE i.indrelid = v_old AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = v_old)
               ORDER BY c.relname LOOP
        IF v_r.current_only THEN
            -- <table>_current (the current rows by key) would be the partition's own name: <table>_current_key.
            v_name := CASE WHEN v_r.relname = v_current THEN v_current || '_key' ELSE v_r.relname END;
            EXECUTE format('DROP INDEX lock_monitoring.%I', v_r.relname);
            v_stmts := v_stmts || regexp_replace(v_r.def, '^(CREATE (UNIQUE )?INDEX )\S+ ON ONLY lock_monitoring\.\S+ ',
                                                 format('\1%I ON lock_monitoring.%I ', v_name, v_current));
        ELSE
            v_name := v_r.relname;
            -- Made again on the new parent under its name: the ended tree's index is attached to it, not built again.
            EXECUTE format('ALTER INDEX lock_monitoring.%I RENAME TO %I', v_r.relname, v_ended || substr(v_r.relname, length(p_table) + 1));
            v_stmts := v_stmts || regexp_replace(v_r.def, ' ON ONLY lock_monitoring\.\S+ ', format(' ON lock_monitoring.%I ', p_table));
        END IF;
        IF v_r.comment IS NOT NULL THEN
            v_stmts := v_stmts || format('COMMENT ON INDEX lock_monitoring.%I IS %L', v_name, v_r.comment);
        END IF;
    END LOOP;
    FOR v_r IN SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = v_old AND contype = 'p' LOOP
        EXECUTE format('ALTER TABLE lock_monitoring.%I RENAME CONSTRAINT %I TO %I', v_ended, v_r.conname, v_ended || '_pkey');
        v_stmts := v_stmts || format('ALTER TABLE lock_monitoring.%I ADD CONSTRAINT %I %s', v_current, v_current || '_pkey', v_r.def);
    END LOOP;

    -- The new table, and its current partition.
    IF v_opts IS NOT NULL THEN
        v_with := ', ' || array_to_string(v_opts, ', ');
    END IF;
    EXECUTE format('CREATE TABLE lock_monitoring.%I (LIKE lock_monitoring.%I INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING CONSTRAINTS '
                   'INCLUDING COMMENTS INCLUDING STORAGE INCLUDING COMPRESSION) PARTITION BY LIST (load_end_date)', p_table, v_ended);
    -- Every row ended moves out of it: vacuumed after 1,000 dead rows, not a fifth of the table.
    EXECUTE format('CREATE TABLE lock_monitoring.%I PARTITION OF lock_monitoring.%I FOR VALUES IN (NULL) '
                   'WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000%s)', v_current, p_table, v_with);
    EXECUTE format('WITH m AS (DELETE FROM lock_monitoring.%I WHERE load_end_date IS NULL RETURNING %s) '
                   'INSERT INTO lock_monitoring.%I (%s) SELECT %s FROM m', v_ended, v_cols, v_current, v_cols, v_cols);
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    EXECUTE format('ALTER TABLE lock_monitoring.%I ALTER COLUMN load_end_date SET NOT NULL', v_ended);
    EXECUTE format('ALTER TABLE lock_monitoring.%I ATTACH PARTITION lock_monitoring.%I DEFAULT', p_table, v_ended);
    FOREACH v_s IN ARRAY v_stmts LOOP
        EXECUTE v_s;
    END LOOP;
    IF v_comment IS NOT NULL THEN
        EXECUTE format('COMMENT ON TABLE lock_monitoring.%I IS %L', p_table, v_comment);
    END IF;
    EXECUTE format('COMMENT ON TABLE lock_monitoring.%I IS %L', v_current,
                   format('lockvault: the current rows of %s (load_end_date NULL), however old: what every write reads (migration 030).', p_table));
    EXECUTE format('COMMENT ON TABLE lock_monitoring.%I IS %L', v_ended,
                   format('lockvault: the closed rows of %s, one partition a UTC day of load_date and a default; retention drops whole days (migration 030).', p_table));
    UPDATE history_partitioning SET range_table = v_ended WHERE table_name = p_table;

    EXECUTE format('SELECT count(*) FROM lock_monitoring.%I', p_table) INTO v_after;
    IF v_after <> v_before THEN
        RAISE EXCEPTION 'lock_monitoring.%: % rows before, % after', p_table, v_before, v_after;
    END IF;
    RETURN v_moved;
END
$fn$;

-- The satellites whose rows the writers end (monitor_gap_s and resolve_decision_s are events:
-- their load_end_date stays NULL, so they stay partitioned by day alone).
SELECT pg_temp.lv_current_apart(hp.table_name)
FROM lock_monitoring.history_partitioning hp
WHERE hp.table_name IN ('blocking_session_s', 'deadlock_counter_s', 'deadlock_event_s', 'deadlock_involvement_s', 'lock_activity_s', 'monitor_cycle_s')
ORDER BY hp.table_name;

DROP FUNCTION pg_temp.lv_current_apart(text);
