-- Migration 032: point events (deadlocks, alerts, resolve decisions) leave with retention by
-- their own day.
--
-- Why: a deadlock is a point event. Its satellites (deadlock_event_s, deadlock_involvement_s)
-- are end-dated only when a later source adds detail (the server log after the counter), so
-- an event's last row stays "current" (load_end_date NULL) forever. Migration 030 keeps the
-- current rows of the end-dated satellites in <table>_current, which retention never reads:
-- every deadlock ever recorded stayed on deadlock_events_dashboard, and the current partition
-- grew with each. Now these two tables are partitioned by load_date alone again, as
-- monitor_gap_s and resolve_decision_s are (one partition a UTC day and a default), and
-- retention drops their days whole, the last row of an event with the others
-- (history_partitioning.keep_when false): an event leaves once the day it was recorded on is
-- older than the retention; its hub and links are swept as any other (retention_sweep).
--
-- The cost: a write of a deadlock looks for the event's current row in every day's partition.
-- It happens only in the cycles that saw a deadlock (record_cycle calls the deadlock writers
-- only then), not in every cycle, which is what migration 030 was for.
--
-- Existing vaults are converted in place, without copying the history: the ended tree
-- (<table>_ended, partitioned by day) is detached and takes back the table's name, its
-- partitions' and indexes' names; the current rows move into it, each into its day's partition
-- (created for the days that have none); the table of migration 030 and its current partition
-- are dropped. Every row is kept (counted before and after). The indexes on current rows are
-- made again on the whole table; lockvault's views on the table are dropped (the
-- functions+views set, re-applied after every numbered migration, recreates them); anyone
-- else's view on it stops the migration, by name.

CREATE FUNCTION pg_temp.lv_events_by_day(p_table text)
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
    v_current_rows bigint;
    v_stmts    text[] := '{}';
    v_comment  text;
    v_s        text;
    v_name     text;
    v_day      date;
    v_n        bigint;
    v_r        record;
BEGIN
    IF (SELECT partstrat FROM pg_partitioned_table WHERE partrelid = v_old) = 'r' THEN
        RETURN NULL;   -- already by day
    END IF;
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO v_cols
    FROM pg_attribute WHERE attrelid = v_old AND attnum > 0 AND NOT attisdropped AND attgenerated = '';
    SELECT partition_options INTO v_opts FROM history_partitioning WHERE table_name = p_table;
    IF v_opts IS NOT NULL THEN
        v_with := ' WITH (' || array_to_string(v_opts, ', ') || ')';
    END IF;
    EXECUTE format('SELECT count(*) FROM lock_monitoring.%I', p_table) INTO v_before;

    -- lockvault's views on it go (dropping the table would take them); anyone else's stop the migration.
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

    -- Spelled while the table of migration 030 still has the name: its privileges and comment.
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
    -- The current partition's own indexes (on current rows only; not its primary key, not those
    -- of the parent's indexes): made again on the whole table, under their names of before 030.
    FOR v_r IN SELECT c.relname, pg_get_indexdef(i.indexrelid) AS def, obj_description(i.indexrelid, 'pg_class') AS comment
               FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
               WHERE i.indrelid = format('lock_monitoring.%I', v_current)::regclass
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
                 AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid)
               ORDER BY c.relname LOOP
        v_name := CASE WHEN v_r.relname = v_current || '_key' THEN v_current ELSE v_r.relname END;
        v_stmts := v_stmts || regexp_replace(v_r.def, '^(CREATE (UNIQUE )?INDEX )\S+ ON lock_monitoring\.\S+ ',
                                             format('\1%I ON lock_monitoring.%I ', v_name, p_table));
        IF v_r.comment IS NOT NULL THEN
            v_stmts := v_stmts || format('COMMENT ON INDEX lock_monitoring.%I IS %L', v_name, v_r.comment);
        END IF;
    END LOOP;

    -- The ended tree on its own, taking current rows again.
    EXECUTE format('ALTER TABLE lock_monitoring.%I DETACH PARTITION lock_monitoring.%I', p_table, v_ended);
    EXECUTE format('ALTER TABLE lock_monitoring.%I ALTER COLUMN load_end_date DROP NOT NULL', v_ended);
    -- A partition for every UTC day of a current row that none covers (the default may hold
    -- rows of such a day: they move into it too).
    FOR v_day IN EXECUTE format('SELECT DISTINCT (load_date AT TIME ZONE ''UTC'')::date FROM lock_monitoring.%I ORDER BY 1', v_current) LOOP
        CONTINUE WHEN EXISTS (
            SELECT 1 FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhrelid
            CROSS JOIN LATERAL (SELECT pg_get_expr(p.relpartbound, p.oid) AS bound) b
            WHERE i.inhparent = format('lock_monitoring.%I', v_ended)::regclass AND b.bound <> 'DEFAULT'
              AND (regexp_match(b.bound, 'FROM \(''([^'']+)''\)'))[1]::timestamptz < (v_day + 1)::timestamp AT TIME ZONE 'UTC'
              AND (regexp_match(b.bound, 'TO \(''([^'']+)''\)'))[1]::timestamptz > v_day::timestamp AT TIME ZONE 'UTC');
        EXECUTE format('CREATE TEMP TABLE lv_moving ON COMMIT DROP AS SELECT %s FROM lock_monitoring.%I WITH NO DATA', v_cols, v_ended);
        EXECUTE format('WITH d AS (DELETE FROM lock_monitoring.%I WHERE load_date >= $1 AND load_date < $2 RETURNING %s) '
                       'INSERT INTO pg_temp.lv_moving SELECT * FROM d', v_ended || '_default', v_cols)
            USING v_day::timestamp AT TIME ZONE 'UTC', (v_day + 1)::timestamp AT TIME ZONE 'UTC';
        EXECUTE format('CREATE TABLE lock_monitoring.%I PARTITION OF lock_monitoring.%I FOR VALUES FROM (%L) TO (%L)%s',
                       p_table || '_p' || to_char(v_day, 'YYYYMMDD'), v_ended,
                       v_day::timestamp AT TIME ZONE 'UTC', (v_day + 1)::timestamp AT TIME ZONE 'UTC', v_with);
        EXECUTE format('INSERT INTO lock_monitoring.%I (%s) SELECT %s FROM pg_temp.lv_moving', v_ended, v_cols, v_cols);
        DROP TABLE pg_temp.lv_moving;
    END LOOP;
    EXECUTE format('SELECT count(*) FROM lock_monitoring.%I', v_current) INTO v_current_rows;
    EXECUTE format('INSERT INTO lock_monitoring.%I (%s) SELECT %s FROM lock_monitoring.%I', v_ended, v_cols, v_cols, v_current);
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    IF v_moved <> v_current_rows THEN
        RAISE EXCEPTION 'lock_monitoring.%: moved % of % current rows', p_table, v_moved, v_current_rows;
    END IF;
    EXECUTE format('DROP TABLE lock_monitoring.%I', p_table);

    -- The names of before migration 030: the table, its days, its default, its indexes.
    EXECUTE format('ALTER TABLE lock_monitoring.%I RENAME TO %I', v_ended, p_table);
    FOR v_r IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               WHERE i.inhparent = format('lock_monitoring.%I', p_table)::regclass AND c.relname LIKE v_ended || '\_%' LOOP
        EXECUTE format('ALTER TABLE lock_monitoring.%I RENAME TO %I', v_r.relname, p_table || substr(v_r.relname, length(v_ended) + 1));
    END LOOP;
    FOR v_r IN SELECT conname FROM pg_constraint WHERE conrelid = format('lock_monitoring.%I', p_table)::regclass
               AND contype = 'p' AND conname = v_ended || '_pkey' LOOP
        EXECUTE format('ALTER TABLE lock_monitoring.%I RENAME CONSTRAINT %I TO %I', p_table, v_r.conname, p_table || '_pkey');
    END LOOP;
    FOR v_r IN SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
               WHERE i.indrelid = format('lock_monitoring.%I', p_table)::regclass AND c.relname LIKE v_ended || '%'
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) LOOP
        EXECUTE format('ALTER INDEX lock_monitoring.%I RENAME TO %I', v_r.relname, p_table || substr(v_r.relname, length(v_ended) + 1));
    END LOOP;
    FOREACH v_s IN ARRAY v_stmts LOOP
        EXECUTE v_s;
    END LOOP;
    EXECUTE format('COMMENT ON TABLE lock_monitoring.%I IS %L', p_table, v_comment);
    UPDATE history_partitioning SET range_table = p_table, keep_when = 'false' WHERE table_name = p_table;

    EXECUTE format('SELECT count(*) FROM lock_monitoring.%I', p_table) INTO v_after;
    IF v_after <> v_before THEN
        RAISE EXCEPTION 'lock_monitoring.%: % rows before, % after', p_table, v_before, v_after;
    END IF;
    RETURN v_moved;
END
$fn$;

SELECT pg_temp.lv_events_by_day(t) FROM unnest(ARRAY['deadlock_event_s', 'deadlock_involvement_s']) AS t ORDER BY t;
DROP FUNCTION pg_temp.lv_events_by_day(text);

-- The alert trail is point events too: alert_event_s and alert_delivery_s are partitioned by
-- day of event_at (their own time, and part of their keys, so a replayed write still inserts
-- nothing twice), registered in history_partitioning, and retention drops their days whole
-- instead of DELETEing rows. Their foreign keys go, as the other partitioned tables' did
-- (migration 023): alert_delivery_s's to alert_event_s (a day of events could not be dropped
-- while the key had to be checked against it; both leave with the same day, and AlertAudit
-- writes an event before its deliveries, in one transaction), and alert_event_s's to alert_h
-- (dropping a day would lock the hub table, and an alert writer holding that while it waited
-- for the day deadlocked with retention). What the key guaranteed, the hub lock keeps: the
-- alert writer takes it shared, and retention_sweep removes an incident's hub, holding it
-- exclusively, once none of its events remain.
ALTER TABLE lock_monitoring.history_partitioning ADD COLUMN IF NOT EXISTS partition_column text NOT NULL DEFAULT 'load_date';
COMMENT ON COLUMN lock_monitoring.history_partitioning.partition_column IS
    'The column whose UTC day a row''s partition is: load_date, or the event''s own time for the alert trail (event_at, migration 032).';

CREATE FUNCTION pg_temp.lv_partition_by_day(p_table text, p_column text, p_days_ahead integer)
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
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO v_cols
    FROM pg_attribute WHERE attrelid = v_old AND attnum > 0 AND NOT attisdropped AND attgenerated = '';
    SELECT reloptions INTO v_opts FROM pg_class WHERE oid = v_old;
    IF v_opts IS NOT NULL THEN
        v_with := ' WITH (' || array_to_string(v_opts, ', ') || ')';
    END IF;

    -- What to recreate on the twin, spelled while the old table still has the name (no foreign key: above).
    SELECT array_agg(format('ALTER TABLE lock_monitoring.%I ADD CONSTRAINT %I %s', p_table, conname, pg_get_constraintdef(oid))
                     ORDER BY conname) INTO v_stmts
    FROM pg_constraint WHERE conrelid = v_old AND contype IN ('p', 'u', 'x');
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
    v_comment := obj_description(v_old, 'pg_class');

    -- The twin: same columns, defaults, CHECKs, column comments; a partition for every UTC day
    -- that has rows, and for yesterday up to p_days_ahead days ahead.
    EXECUTE format('CREATE TABLE lock_monitoring.%I (LIKE lock_monitoring.%I INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING CONSTRAINTS '
                   'INCLUDING COMMENTS INCLUDING STORAGE INCLUDING COMPRESSION) PARTITION BY RANGE (%I)', v_twin, p_table, p_column);
    EXECUTE format('CREATE TABLE lock_monitoring.%I PARTITION OF lock_monitoring.%I DEFAULT%s', p_table || '_default', v_twin, v_with);
    FOR v_day IN EXECUTE format(
        'SELECT DISTINCT (%I AT TIME ZONE ''UTC'')::date FROM lock_monitoring.%I '
        'UNION SELECT generate_series((now() AT TIME ZONE ''UTC'')::date - 1, (now() AT TIME ZONE ''UTC'')::date + $1, interval ''1 day'')::date '
        'ORDER BY 1', p_column, p_table) USING p_days_ahead
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
    INSERT INTO history_partitioning (table_name, keep_when, partition_options, range_table, partition_column)
    VALUES (p_table, 'false', v_opts, p_table, p_column)
    ON CONFLICT (table_name) DO NOTHING;
    RETURN v_copied;
END
$fn$;

DO $drop_keys$
DECLARE
    v_key record;
BEGIN
    FOR v_key IN SELECT conrelid::regclass AS t, conname FROM pg_constraint
                 WHERE conrelid IN ('lock_monitoring.alert_delivery_s'::regclass, 'lock_monitoring.alert_event_s'::regclass) AND contype = 'f'
                 ORDER BY conrelid = 'lock_monitoring.alert_delivery_s'::regclass DESC LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', v_key.t, v_key.conname);
    END LOOP;
END
$drop_keys$;
SELECT pg_temp.lv_partition_by_day(t, 'event_at', 7) FROM unnest(ARRAY['alert_delivery_s', 'alert_event_s']) AS t ORDER BY t;
DROP FUNCTION pg_temp.lv_partition_by_day(text, text, integer);
-- The daemon VACUUMs the default partitions after retention DELETEd from them: from
-- PostgreSQL 17 on, with the MAINTAIN privilege (migration 028 granted it on the tables there then).
DO $maintain$
BEGIN
    IF current_setting('server_version_num')::int >= 170000 THEN
        EXECUTE 'GRANT MAINTAIN ON lock_monitoring.alert_event_s_default, lock_monitoring.alert_delivery_s_default TO lock_writer_role';
    END IF;
END
$maintain$;
COMMENT ON TABLE lock_monitoring.alert_delivery_s IS
    'Satellite (lockvault): the outcome of handing one alert to one configured sink (alerts.sinks). One partition a UTC day of event_at, as its alert_event_s row (no foreign key to it: both leave with their day, migration 032).';

-- A resolve decision is a point event too: it leaves with its day, even while its blocker is
-- still blocking (the blocker's own rows stay; the decisions about it are history).
UPDATE lock_monitoring.history_partitioning SET keep_when = 'false' WHERE table_name = 'resolve_decision_s';

COMMENT ON COLUMN lock_monitoring.history_partitioning.range_table IS
    'The table whose partitions are the UTC days: <table>_ended for the state satellites (their current rows are in <table>_current, migration 030), the table itself for the point events (deadlocks, gaps, resolve decisions: migration 032).';
COMMENT ON COLUMN lock_monitoring.history_partitioning.keep_when IS
    'SQL condition on a row t of a partition older than the retention, $1 = the cutoff: rows for which it is not false are moved to the default partition before the partition is dropped (rows closed after the cutoff, a gap that ended after it). false for the point events, which leave with their day.';
