-- Retention: removes history and alerts older than the retention — closed satellite rows
-- (load_end_date older than the cutoff), event rows by age, then hubs and links nothing
-- references any more. Current rows are never removed, whatever their age, and neither are
-- the hubs they point to. The daemon runs it (retention.days); DBAs may too.
--
-- The partitioned history tables (migration 020, history_partitioning) lose whole days: a
-- daily partition that ends before the cutoff is detached and dropped, after the rows its
-- keep_when rule keeps (current rows, rows closed after the cutoff) were moved to the default
-- partition — no DELETE, no dead rows, no vacuum debt. A day is dropped once all of it is
-- older than the cutoff, so rows may stay up to a day longer than retention_days. The default
-- partition (those kept rows, writes no partition covered) is cleaned by DELETE once its rows
-- are closed before the cutoff; it holds only current rows older than the retention and rows
-- of days without a partition. Hubs, links and the alert trail are not partitioned and are
-- DELETEd — but only the hubs and links that the removed rows (and removed links) referred to
-- are looked at, and the session hubs first seen on the dropped days (migration 022): proving
-- a hub unreferenced probes every partition of the tables that refer to it, so looking at
-- every old hub (most of them still referenced) cost seconds on every run.
-- SECURITY DEFINER: dropping a partition needs the tables' owner.

-- Vaults migrated before the functions moved to sql/functions had the history part split off
-- as cleanup_old_history (migration 012 renamed it to add the alert trail); it is one function
-- again.
DROP FUNCTION IF EXISTS lock_monitoring.cleanup_old_history(integer);
-- Its result gained partitions_dropped (migration 020): a new result type needs a new function.
DO $shape$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_proc WHERE oid = to_regprocedure('lock_monitoring.cleanup_old_data(integer)')
               AND NOT 'partitions_dropped' = ANY (proargnames)) THEN
        DROP FUNCTION lock_monitoring.cleanup_old_data(integer);
    END IF;
END
$shape$;

CREATE OR REPLACE FUNCTION lock_monitoring.cleanup_old_data(retention_days integer DEFAULT 30)
RETURNS TABLE (table_name text, rows_deleted bigint, partitions_dropped integer)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, lock_monitoring, pg_temp
AS $fn$
DECLARE
    v_cutoff timestamptz;
    v_n bigint;
    v_all bigint;
    v_t record;
    v_p record;
    v_cols text;
    v_keys text[];
    v_key text;
    v_born_from timestamptz;
    v_born_to timestamptz;
BEGIN
    IF retention_days IS NULL OR retention_days < 1 THEN
        RAISE EXCEPTION 'cleanup_old_data: retention_days must be at least 1, got %', retention_days USING ERRCODE = '22023';
    END IF;
    v_cutoff := now() - make_interval(days => retention_days);
    -- Every daemon of a fleet may run this: one at a time (and never beside create_history_partitions).
    PERFORM pg_advisory_xact_lock(hashtext('lock_monitoring history partitions'));
    -- The hub and link keys that removed rows referred to (key_column = the column's name):
    -- the only hubs and links that may have become unreferenced by this run.
    CREATE TEMP TABLE IF NOT EXISTS lv_retired_keys (key_column text, hk bytea, PRIMARY KEY (key_column, hk)) ON COMMIT DROP;
    TRUNCATE pg_temp.lv_retired_keys;

    -- Partitioned history: whole days.
    FOR v_t IN SELECT hp.table_name, hp.keep_when FROM history_partitioning hp ORDER BY hp.table_name LOOP
        table_name := v_t.table_name; rows_deleted := 0; partitions_dropped := 0;
        SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum),
               array_agg(attname::text ORDER BY attnum) FILTER (WHERE attname LIKE '%\_hk' AND atttypid = 'bytea'::regtype
                                                                  AND attname NOT IN ('cluster_hk', 'tenant_hk'))
        INTO v_cols, v_keys
        FROM pg_attribute WHERE attrelid = format('lock_monitoring.%I', v_t.table_name)::regclass
          AND attnum > 0 AND NOT attisdropped AND attgenerated = '';
        FOR v_p IN SELECT p.partition_name, p.range_start, p.range_end FROM history_partitions(v_t.table_name) p
                   WHERE NOT p.is_default AND p.range_end <= v_cutoff ORDER BY p.range_start LOOP
            -- Detached first: from here on no writer can change its rows (they wait for this
            -- transaction), so what is moved is what the partition holds.
            EXECUTE format('ALTER TABLE lock_monitoring.%I DETACH PARTITION lock_monitoring.%I', v_t.table_name, v_p.partition_name);
            EXECUTE format('SELECT count(*) FROM lock_monitoring.%I', v_p.partition_name) INTO v_all;
            EXECUTE format('INSERT INTO lock_monitoring.%I (%s) SELECT %s FROM lock_monitoring.%I t WHERE (%s) IS NOT FALSE',
                           v_t.table_name, v_cols, v_cols, v_p.partition_name, v_t.keep_when) USING v_cutoff;
            GET DIAGNOSTICS v_n = ROW_COUNT;
            FOREACH v_key IN ARRAY coalesce(v_keys, '{}') LOOP
                EXECUTE format('INSERT INTO pg_temp.lv_retired_keys SELECT DISTINCT %L, t.%I FROM lock_monitoring.%I t WHERE (%s) IS FALSE '
                               'ON CONFLICT DO NOTHING', v_key, v_key, v_p.partition_name, v_t.keep_when) USING v_cutoff;
            END LOOP;
            EXECUTE format('DROP TABLE lock_monitoring.%I', v_p.partition_name);
            rows_deleted := rows_deleted + v_all - v_n;
            partitions_dropped := partitions_dropped + 1;
            v_born_from := least(v_born_from, v_p.range_start);
            v_born_to := greatest(v_born_to, v_p.range_end);
        END LOOP;
        -- The default partition (rows kept from dropped days, writes for days without a partition): by DELETE.
        IF v_keys IS NULL THEN
            EXECUTE format('DELETE FROM lock_monitoring.%I t WHERE t.load_date < $1 AND (%s) IS FALSE', v_t.table_name || '_default', v_t.keep_when)
                USING v_cutoff;
            GET DIAGNOSTICS v_n = ROW_COUNT;
        ELSE
            EXECUTE format('WITH d AS (DELETE FROM lock_monitoring.%I t WHERE t.load_date < $1 AND (%s) IS FALSE RETURNING %s), '
                           'k AS (INSERT INTO pg_temp.lv_retired_keys %s ON CONFLICT DO NOTHING) SELECT count(*) FROM d',
                           v_t.table_name || '_default', v_t.keep_when,
                           (SELECT string_agg(format('t.%I', k), ', ') FROM unnest(v_keys) k),
                           (SELECT string_agg(format('SELECT %L, d.%I FROM d', k, k), ' UNION ') FROM unnest(v_keys) k))
                INTO v_n USING v_cutoff;
        END IF;
        rows_deleted := rows_deleted + v_n;
        RETURN NEXT;
    END LOOP;
    partitions_dropped := 0;
    DELETE FROM lock_wait_analysis_s WHERE load_end_date < v_cutoff;      GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'lock_wait_analysis_s'; rows_deleted := v_n; RETURN NEXT;

    -- Links, then hubs, that are old and that nothing references any more. Only the keys the
    -- removed rows (and removed links) referred to are looked at — and, for sessions, whose
    -- hub a cycle writes for every session it names, also the hubs first seen on the dropped
    -- days: any other hub still has the reference it had before this run.
    WITH d AS (
        DELETE FROM lock_blocking_l l USING pg_temp.lv_retired_keys r
        WHERE r.key_column = 'lock_activity_hk' AND l.lock_activity_hk = r.hk AND l.load_date < v_cutoff
          AND NOT EXISTS (SELECT 1 FROM lock_activity_s s WHERE s.lock_activity_hk = l.lock_activity_hk)
        RETURNING l.blocking_session_hk, l.blocked_session_hk),
    k AS (
        INSERT INTO pg_temp.lv_retired_keys SELECT 'blocking_session_hk', d.blocking_session_hk FROM d
        UNION SELECT 'blocking_session_hk', d.blocked_session_hk FROM d ON CONFLICT DO NOTHING)
    SELECT count(*) INTO v_n FROM d;
    table_name := 'lock_blocking_l'; rows_deleted := v_n; RETURN NEXT;
    WITH d AS (
        DELETE FROM deadlock_involvement_l l
        WHERE l.deadlock_involvement_hk IN (
                  SELECT r.hk FROM pg_temp.lv_retired_keys r WHERE r.key_column = 'deadlock_involvement_hk'
                  UNION SELECT l2.deadlock_involvement_hk FROM pg_temp.lv_retired_keys r JOIN deadlock_involvement_l l2 ON l2.deadlock_event_hk = r.hk
                  WHERE r.key_column = 'deadlock_event_hk')
          AND l.load_date < v_cutoff
          AND NOT EXISTS (SELECT 1 FROM deadlock_involvement_s s WHERE s.deadlock_involvement_hk = l.deadlock_involvement_hk)
          AND NOT EXISTS (SELECT 1 FROM deadlock_event_s s WHERE s.deadlock_event_hk = l.deadlock_event_hk)
        RETURNING l.deadlock_event_hk, l.blocking_session_hk),
    k AS (
        INSERT INTO pg_temp.lv_retired_keys SELECT 'deadlock_event_hk', d.deadlock_event_hk FROM d
        UNION SELECT 'blocking_session_hk', d.blocking_session_hk FROM d ON CONFLICT DO NOTHING)
    SELECT count(*) INTO v_n FROM d;
    table_name := 'deadlock_involvement_l'; rows_deleted := v_n; RETURN NEXT;
    DELETE FROM lock_activity_h h USING pg_temp.lv_retired_keys r
    WHERE r.key_column = 'lock_activity_hk' AND h.lock_activity_hk = r.hk AND h.load_date < v_cutoff
        AND NOT EXISTS (SELECT 1 FROM lock_activity_s s WHERE s.lock_activity_hk = h.lock_activity_hk)
        AND NOT EXISTS (SELECT 1 FROM lock_blocking_l l WHERE l.lock_activity_hk = h.lock_activity_hk);
    GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'lock_activity_h'; rows_deleted := v_n; RETURN NEXT;
    DELETE FROM deadlock_event_h h USING pg_temp.lv_retired_keys r
    WHERE r.key_column = 'deadlock_event_hk' AND h.deadlock_event_hk = r.hk AND h.load_date < v_cutoff
        AND NOT EXISTS (SELECT 1 FROM deadlock_event_s s WHERE s.deadlock_event_hk = h.deadlock_event_hk)
        AND NOT EXISTS (SELECT 1 FROM deadlock_involvement_l l WHERE l.deadlock_event_hk = h.deadlock_event_hk);
    GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'deadlock_event_h'; rows_deleted := v_n; RETURN NEXT;
    IF v_born_from IS NOT NULL THEN
        INSERT INTO pg_temp.lv_retired_keys SELECT 'blocking_session_hk', h.blocking_session_hk FROM blocking_session_h h
        WHERE h.load_date >= v_born_from AND h.load_date < least(v_born_to, v_cutoff) ON CONFLICT DO NOTHING;
    END IF;
    DELETE FROM blocking_session_h h USING pg_temp.lv_retired_keys r
    WHERE r.key_column = 'blocking_session_hk' AND h.blocking_session_hk = r.hk AND h.load_date < v_cutoff
        AND NOT EXISTS (SELECT 1 FROM blocking_session_s s WHERE s.blocking_session_hk = h.blocking_session_hk)
        AND NOT EXISTS (SELECT 1 FROM resolve_decision_s rd WHERE rd.blocking_session_hk = h.blocking_session_hk)
        AND NOT EXISTS (SELECT 1 FROM lock_blocking_l l WHERE l.blocking_session_hk = h.blocking_session_hk)
        AND NOT EXISTS (SELECT 1 FROM lock_blocking_l l WHERE l.blocked_session_hk = h.blocking_session_hk)
        AND NOT EXISTS (SELECT 1 FROM deadlock_involvement_l l WHERE l.blocking_session_hk = h.blocking_session_hk);
    GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'blocking_session_h'; rows_deleted := v_n; RETURN NEXT;
    DELETE FROM lock_wait_analysis_h h WHERE h.load_date < v_cutoff
        AND NOT EXISTS (SELECT 1 FROM lock_wait_analysis_s s WHERE s.lock_wait_analysis_hk = h.lock_wait_analysis_hk);
    GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'lock_wait_analysis_h'; rows_deleted := v_n; RETURN NEXT;

    -- The alert trail: events are never superseded, so they go by age; an incident's hub
    -- once none of its events remain.
    DELETE FROM alert_delivery_s WHERE event_at < v_cutoff;   GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'alert_delivery_s'; rows_deleted := v_n; RETURN NEXT;
    DELETE FROM alert_event_s WHERE event_at < v_cutoff;      GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'alert_event_s'; rows_deleted := v_n; RETURN NEXT;
    DELETE FROM alert_h h WHERE h.load_date < v_cutoff
        AND NOT EXISTS (SELECT 1 FROM alert_event_s e WHERE e.alert_hk = h.alert_hk);
    GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'alert_h'; rows_deleted := v_n; RETURN NEXT;
END
$fn$;
COMMENT ON FUNCTION lock_monitoring.cleanup_old_data(integer) IS
    'Removes closed history and alerts older than retention_days (never current rows, nor the hubs they point to; hubs/links only when unreferenced): partitioned history by dropping whole days, the rest by DELETE. Returns rows removed and partitions dropped per table.';
REVOKE ALL ON FUNCTION lock_monitoring.cleanup_old_data(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lock_monitoring.cleanup_old_data(integer) TO lock_writer_role;
